package hooks

import (
	"encoding/json"
	"slices"
)

// spliceOps applies ops to doc, well-formed JSON (husk's encoding of an
// event), by editing its text: it does what applyPatch does when every
// operation adds or replaces a member of an object that exists, the
// common patch (resource-defaults, readonly-rootfs, vm-sizing), without
// decoding the event into a tree and encoding it again. ok is false for
// any other patch, or a path that does not lead to an object: applyPatch
// then takes the tree, and its errors. Values are well-formed (the
// decision was parsed); member order differs from the tree's, which the
// event's canonical encoding (canonical) makes no matter.
func spliceOps(doc []byte, ops []Op) (out []byte, ok bool) {
	defer func() {
		if recover() != nil { // text that is not well-formed: not husk's
			out, ok = nil, false
		}
	}()
	for _, op := range ops {
		if op.Op != "add" && op.Op != "replace" || op.Value == nil {
			return nil, false
		}
		path, err := parsePointer(op.Path)
		if err != nil || len(path) == 0 {
			return nil, false
		}
		start, found := locate(doc, path[:len(path)-1])
		if !found || doc[start] != '{' {
			return nil, false
		}
		name := path[len(path)-1]
		vs, ve, found := memberSpan(doc, start, name)
		switch {
		case found:
			doc = slices.Concat(doc[:vs], op.Value, doc[ve:])
		case op.Op == "replace":
			return nil, false // the tree says why
		default:
			end := valueEnd(doc, start) - 1 // the object's '}'
			key, _ := json.Marshal(name)
			sep := []byte{','}
			w := validWalker{b: doc, i: start + 1}
			if w.space(); w.i == end {
				sep = nil // an empty object
			}
			doc = slices.Concat(doc[:end], sep, key, []byte{':'}, op.Value, doc[end:])
		}
	}
	return doc, true
}

// locate returns where the value at path starts in doc, if path leads
// through objects only.
func locate(doc []byte, path pointer) (int, bool) {
	w := validWalker{b: doc}
	w.space()
	at := w.i
	for _, tok := range path {
		if doc[at] != '{' {
			return 0, false
		}
		vs, _, found := memberSpan(doc, at, tok)
		if !found {
			return 0, false
		}
		at = vs
	}
	return at, true
}

// memberSpan returns the span of the value of member name in the object
// starting at start.
func memberSpan(doc []byte, start int, name string) (vs, ve int, found bool) {
	w := validWalker{b: doc, i: start + 1}
	if w.space(); w.b[w.i] == '}' {
		return 0, 0, false
	}
	for {
		w.space()
		n := w.name()
		w.space()
		w.i++ // :
		w.space()
		vs = w.i
		w.skip()
		if n == name {
			return vs, w.i, true
		}
		w.space()
		c := w.b[w.i]
		w.i++
		if c == '}' {
			return 0, 0, false
		}
	}
}

// valueEnd returns the end of the value starting at start.
func valueEnd(doc []byte, start int) int {
	w := validWalker{b: doc, i: start}
	w.skip()
	return w.i
}

// skip moves past the value at w.i.
func (w *validWalker) skip() {
	switch w.b[w.i] {
	case '{', '[':
		depth := 0
		for {
			switch w.b[w.i] {
			case '"':
				w.str()
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
			}
			w.i++
			if depth == 0 {
				return
			}
		}
	case '"':
		w.str()
	default:
		for w.i < len(w.b) {
			switch w.b[w.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return
			}
			w.i++
		}
	}
}
