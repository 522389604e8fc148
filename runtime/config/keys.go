package config

import (
	"slices"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// keyIndex records where each key of one TOML document is written. go-toml
// reports positions for syntax and type errors but not for values that are
// checked after decoding, so validation looks them up here.
type keyIndex []keyPos

// keyPos is one key as written: a table header or a key-value.
type keyPos struct {
	key         string // full dotted key, as formatKey renders it
	line, col   int    // start of the key
	vline, vcol int    // start of the value; 0 for table headers
}

// indexKeys indexes the keys of data. A document that fails to parse gives
// the keys before the error, which is all an error before it can need.
func indexKeys(data []byte) keyIndex {
	var (
		p     unstable.Parser
		idx   keyIndex
		table []string
	)
	p.Reset(data)
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			it := e.Key()
			var first *unstable.Node
			table = nil
			for it.Next() {
				if first == nil {
					first = it.Node()
				}
				table = append(table, string(it.Node().Data))
			}
			if first != nil {
				start := p.Shape(first.Raw).Start
				idx = append(idx, keyPos{key: formatKey(table), line: start.Line, col: start.Column})
			}
		case unstable.KeyValue:
			idx = idx.addKeyValue(&p, table, e)
		}
	}
	return idx
}

// addKeyValue adds kv, whose key is relative to prefix, and the key-values of
// an inline table it holds.
func (idx keyIndex) addKeyValue(p *unstable.Parser, prefix []string, kv *unstable.Node) keyIndex {
	it := kv.Key()
	var first *unstable.Node
	parts := slices.Clone(prefix)
	for it.Next() {
		if first == nil {
			first = it.Node()
		}
		parts = append(parts, string(it.Node().Data))
	}
	if first == nil {
		return idx
	}
	k := p.Shape(first.Raw).Start
	pos := keyPos{key: formatKey(parts), line: k.Line, col: k.Column}
	v := kv.Value()
	if v.Raw.Length > 0 {
		vs := p.Shape(v.Raw).Start
		pos.vline, pos.vcol = vs.Line, vs.Column
	}
	idx = append(idx, pos)
	if v.Kind == unstable.InlineTable {
		children := v.Children()
		for children.Next() {
			if c := children.Node(); c.Kind == unstable.KeyValue {
				idx = idx.addKeyValue(p, parts, c)
			}
		}
	}
	return idx
}

// find returns where key is first written.
func (idx keyIndex) find(key string) (keyPos, bool) {
	for _, p := range idx {
		if p.key == key {
			return p, true
		}
	}
	return keyPos{}, false
}

// keyAt returns the key written, or whose value is written, at line:col.
func (idx keyIndex) keyAt(line, col int) (string, bool) {
	for _, p := range idx {
		if (p.line == line && p.col == col) || (p.vline == line && p.vcol == col) {
			return p.key, true
		}
	}
	return "", false
}

// formatKey renders key parts as a dotted TOML key, quoting parts that are
// not bare keys so that the rendering is unambiguous.
func formatKey(parts []string) string {
	quoted := make([]string, len(parts))
	for i, s := range parts {
		quoted[i] = s
		if !isBareKey(s) {
			quoted[i] = strconv.Quote(s)
		}
	}
	return strings.Join(quoted, ".")
}

func isBareKey(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		ok := c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_'
		if !ok {
			return false
		}
	}
	return true
}
