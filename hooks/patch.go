package hooks

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/huskrt/husk/internal/textesc"
)

// Op is one JSON Patch (RFC 6902) operation: add, remove, replace, move,
// copy or test. Value is JSON text (for add, replace and test).
type Op struct {
	Op    string          `json:"op"`
	Path  string          `json:"path"`
	From  string          `json:"from,omitempty"`
	Value json.RawMessage `json:"value,omitempty"`
}

// Bounds on a patch: a module's patch cannot make husk do unbounded work.
// Everything a patch adds comes from the decision (at most
// wasmhost.DefaultMaxOutput bytes) except what copy duplicates, which is
// bounded here in bytes as well as in values: the patched event is at
// most the event, the decision and maxCopyBytes long.
const (
	maxOps        = 1024    // operations in one patch
	maxCopyValues = 1 << 16 // JSON values duplicated by copy operations in one patch
	maxCopyBytes  = 1 << 20 // bytes of JSON text duplicated by copy operations in one patch
)

// errDeadline is the cause of a patch whose application ran past its
// deadline.
var errDeadline = errors.New("deadline exceeded while applying the patch")

// applyPatch applies ops to the JSON document doc, all or nothing, and
// returns the new document's JSON. It implements RFC 6902 exactly, with
// numbers kept as written (no float64 rounding) and compared numerically
// by test. It stops with errDeadline once deadline has passed (the zero
// time: none).
func applyPatch(doc []byte, ops []Op, deadline time.Time) ([]byte, error) {
	tree, err := decodeTree(doc)
	if err != nil {
		return nil, fmt.Errorf("event: %w", err)
	}
	p := patcher{values: maxCopyValues, bytes: maxCopyBytes, deadline: deadline}
	for i, op := range ops {
		if p.late() {
			return nil, errDeadline
		}
		if tree, err = p.apply(tree, op); err != nil {
			return nil, fmt.Errorf("patch operation %d (%s %s): %w", i, textesc.Escape(op.Op), textesc.Escape(op.Path), err)
		}
	}
	out, err := json.Marshal(tree)
	if err != nil {
		return nil, fmt.Errorf("encode patched event: %w", err)
	}
	return out, nil
}

// decodeTree decodes one JSON value into nil, bool, string, json.Number,
// []any or map[string]any.
func decodeTree(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("data after the JSON value")
	}
	return v, nil
}

// patcher applies the operations of one patch.
type patcher struct {
	values   int // JSON values copy may still duplicate
	bytes    int // bytes of JSON text copy may still duplicate
	deadline time.Time
}

// late reports whether p's deadline has passed.
func (p *patcher) late() bool {
	return !p.deadline.IsZero() && time.Now().After(p.deadline)
}

// Errors of patch application.
var (
	errNoPath    = errors.New("path does not exist")
	errTestFails = errors.New("test failed: values differ")
)

func (p *patcher) apply(doc any, op Op) (any, error) {
	path, err := parsePointer(op.Path)
	if err != nil {
		return nil, err
	}
	switch op.Op {
	case "add", "replace", "test":
		if op.Value == nil {
			return nil, fmt.Errorf("%s needs a value", op.Op)
		}
		value, err := decodeTree(op.Value)
		if err != nil {
			return nil, fmt.Errorf("value: %w", err)
		}
		switch op.Op {
		case "add":
			return add(doc, path, value)
		case "replace":
			return replace(doc, path, value)
		}
		got, err := get(doc, path)
		if err != nil {
			return nil, err
		}
		if !equal(got, value) {
			return nil, errTestFails
		}
		return doc, nil
	case "remove":
		if len(path) == 0 {
			return nil, errors.New("cannot remove the whole document")
		}
		doc, _, err := remove(doc, path)
		return doc, err
	case "move", "copy":
		from, err := parsePointer(op.From)
		if err != nil {
			return nil, fmt.Errorf("from: %w", err)
		}
		value, err := get(doc, from)
		if err != nil {
			return nil, fmt.Errorf("from %s: %w", textesc.Escape(op.From), err)
		}
		if op.Op == "copy" {
			if value, err = p.clone(value); err != nil {
				return nil, err
			}
			return add(doc, path, value)
		}
		if path.hasPrefix(from) {
			if len(path) == len(from) {
				return doc, nil // moving a value onto itself changes nothing
			}
			return nil, errors.New("cannot move a value into itself")
		}
		if doc, _, err = remove(doc, from); err != nil {
			return nil, err
		}
		return add(doc, path, value)
	}
	return nil, fmt.Errorf("unknown operation %q", op.Op)
}

// get returns the value at path.
func get(doc any, path pointer) (any, error) {
	for _, tok := range path {
		switch n := doc.(type) {
		case map[string]any:
			v, ok := n[tok]
			if !ok {
				return nil, errNoPath
			}
			doc = v
		case []any:
			i, err := index(tok, len(n)-1)
			if err != nil {
				return nil, err
			}
			doc = n[i]
		default:
			return nil, errNoPath
		}
	}
	return doc, nil
}

// modify replaces the container holding path's last token with what f
// returns for it, and returns the new document. Containers are updated in
// place except arrays, whose new slice is stored in their parent.
func modify(doc any, path pointer, f func(parent any, last string) (any, error)) (any, error) {
	if len(path) == 1 {
		return f(doc, path[0])
	}
	tok, rest := path[0], path[1:]
	switch n := doc.(type) {
	case map[string]any:
		child, ok := n[tok]
		if !ok {
			return nil, errNoPath
		}
		c, err := modify(child, rest, f)
		if err != nil {
			return nil, err
		}
		n[tok] = c
		return n, nil
	case []any:
		i, err := index(tok, len(n)-1)
		if err != nil {
			return nil, err
		}
		c, err := modify(n[i], rest, f)
		if err != nil {
			return nil, err
		}
		n[i] = c
		return n, nil
	}
	return nil, errNoPath
}

// add implements "add": set a member, or insert into an array ("-"
// appends); the empty path replaces the document.
func add(doc any, path pointer, value any) (any, error) {
	if len(path) == 0 {
		return value, nil
	}
	return modify(doc, path, func(parent any, last string) (any, error) {
		switch n := parent.(type) {
		case map[string]any:
			n[last] = value
			return n, nil
		case []any:
			if last == "-" {
				return append(n, value), nil
			}
			i, err := index(last, len(n))
			if err != nil {
				return nil, err
			}
			n = append(n, nil)
			copy(n[i+1:], n[i:])
			n[i] = value
			return n, nil
		}
		return nil, errNoPath
	})
}

// replace implements "replace": the value at path must exist.
func replace(doc any, path pointer, value any) (any, error) {
	if len(path) == 0 {
		return value, nil
	}
	return modify(doc, path, func(parent any, last string) (any, error) {
		switch n := parent.(type) {
		case map[string]any:
			if _, ok := n[last]; !ok {
				return nil, errNoPath
			}
			n[last] = value
			return n, nil
		case []any:
			i, err := index(last, len(n)-1)
			if err != nil {
				return nil, err
			}
			n[i] = value
			return n, nil
		}
		return nil, errNoPath
	})
}

// remove implements "remove" and returns the value removed.
func remove(doc any, path pointer) (any, any, error) {
	var removed any
	doc, err := modify(doc, path, func(parent any, last string) (any, error) {
		switch n := parent.(type) {
		case map[string]any:
			v, ok := n[last]
			if !ok {
				return nil, errNoPath
			}
			removed = v
			delete(n, last)
			return n, nil
		case []any:
			i, err := index(last, len(n)-1)
			if err != nil {
				return nil, err
			}
			removed = n[i]
			return append(n[:i:i], n[i+1:]...), nil
		}
		return nil, errNoPath
	})
	return doc, removed, err
}

// index parses an array index token: decimal digits without leading zeros
// (RFC 6901), at most limit.
func index(tok string, limit int) (int, error) {
	if tok == "" || (len(tok) > 1 && tok[0] == '0') || strings.TrimLeft(tok, "0123456789") != "" {
		if tok == "-" {
			return 0, errNoPath // "-" names the element after the last
		}
		return 0, fmt.Errorf("bad array index %q", tok)
	}
	i, err := strconv.Atoi(tok)
	if err != nil || i > limit {
		return 0, fmt.Errorf("array index %s out of range", tok)
	}
	return i, nil
}

// clone deep-copies v, charging each value and the length of its JSON
// text to p's budgets. (Strings are shared, not copied, but they are
// written out again when the patched event is encoded: a copy of a 100 KB
// string costs 100 KB.)
func (p *patcher) clone(v any) (any, error) {
	p.values--
	p.bytes -= jsonSize(v)
	if p.values < 0 || p.bytes < 0 {
		return nil, fmt.Errorf("copy operations duplicate too much of the event (at most %d values, %d bytes of JSON in one patch)", maxCopyValues, maxCopyBytes)
	}
	if p.values%4096 == 0 && p.late() {
		return nil, errDeadline
	}
	switch n := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(n))
		for k, e := range n {
			p.bytes -= len(k) + 3 // "k":
			c, err := p.clone(e)
			if err != nil {
				return nil, err
			}
			m[k] = c
		}
		return m, nil
	case []any:
		s := make([]any, len(n))
		for i, e := range n {
			c, err := p.clone(e)
			if err != nil {
				return nil, err
			}
			s[i] = c
		}
		return s, nil
	}
	return v, nil // scalars are immutable
}

// jsonSize is the length of v's JSON text, for a scalar, or of the
// brackets and separators of an array or object (clone charges the
// members).
func jsonSize(v any) int {
	switch n := v.(type) {
	case string:
		return len(n) + 2 // at least; escapes make it longer
	case json.Number:
		return len(n)
	case bool:
		return 5
	case []any:
		return 2 + len(n)
	case map[string]any:
		return 2 + len(n)
	}
	return 4 // null
}

// equal is JSON equality (RFC 6902 "test"): same type, numbers equal as
// numbers, arrays element by element, objects member by member.
func equal(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case string:
		y, ok := b.(string)
		return ok && x == y
	case json.Number:
		y, ok := b.(json.Number)
		return ok && numbersEqual(x, y)
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equal(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !equal(v, w) {
				return false
			}
		}
		return true
	}
	return false
}

// numbersEqual compares two JSON numbers: exactly when both are integers
// (so that large uint64 values such as memory limits compare right), as
// float64 otherwise. JSON writes an integer one way only (no leading
// zeros, no plus sign), so two integers are equal when their text is,
// "-0" and "0" aside: comparing costs their length, where parsing a
// million-digit integer (big.Int) costs seconds of CPU. (big.Rat would be
// exact for all, but parsing "1e9999999" with it costs unbounded time and
// memory.)
func numbersEqual(a, b json.Number) bool {
	if isInteger(a) && isInteger(b) {
		return a == b || (a == "-0" && b == "0") || (a == "0" && b == "-0")
	}
	x, errx := a.Float64()
	y, erry := b.Float64()
	return errx == nil && erry == nil && x == y
}

func isInteger(n json.Number) bool {
	return !strings.ContainsAny(string(n), ".eE")
}
