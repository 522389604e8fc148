package hooks

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// spliceCases are documents and patches: spliced where spliceOps takes
// them, and left to the tree where it does not.
var spliceCases = []struct {
	doc, ops string
	spliced  bool // spliceOps takes the patch
}{
	{`{"a":1}`, `[{"op":"add","path":"/b","value":2}]`, true},
	{`{"a":1}`, `[{"op":"add","path":"/a","value":{"x":[1,"}"]}}]`, true},
	{`{}`, `[{"op":"add","path":"/b","value":"v"}]`, true},
	{` { } `, `[{"op":"add","path":"/b","value":"v"}]`, true},
	{`{"s":{"l":{"m":null}}}`, `[{"op":"add","path":"/s/l/m","value":{"limit":5}},{"op":"add","path":"/s/l/p","value":{"limit":6}}]`, true},
	{`{"s":{"l":{}}}`, `[{"op":"replace","path":"/s/l","value":[1]},{"op":"add","path":"/s/x~1y~0","value":true}]`, true},
	{`{"a\"b":{"c":"}{]["},"d":[{"e":1}]}`, `[{"op":"add","path":"/a\"b/c","value":"x"},{"op":"add","path":"/a\"b/n","value":1}]`, true},
	{`{"\u0061":{"b":1}}`, `[{"op":"add","path":"/a/c","value":2}]`, true},
	{`{"a":1}`, `[{"op":"replace","path":"/b","value":2}]`, false},
	{`{"a":[1]}`, `[{"op":"add","path":"/a/0","value":2}]`, false},
	{`{"a":[{"b":1}]}`, `[{"op":"add","path":"/a/0/c","value":2}]`, false},
	{`{"a":null}`, `[{"op":"add","path":"/a/b","value":2}]`, false},
	{`{"a":1}`, `[{"op":"add","path":"/x/b","value":2}]`, false},
	{`{"a":1}`, `[{"op":"remove","path":"/a"}]`, false},
	{`{"a":1}`, `[{"op":"add","path":"","value":2}]`, false},
	{`{"a":1}`, `[{"op":"add","path":"/b","value":2},{"op":"test","path":"/b","value":2}]`, false},
}

// TestSpliceAsTree: what spliceOps makes of a patch is what applyPatch
// makes of it, as JSON values; the patches it does not take are left to
// applyPatch.
func TestSpliceAsTree(t *testing.T) {
	for _, c := range spliceCases {
		var ops []Op
		if err := json.Unmarshal([]byte(c.ops), &ops); err != nil {
			t.Fatal(err)
		}
		got, ok := spliceOps([]byte(c.doc), ops)
		if ok != c.spliced {
			t.Errorf("%s %s: spliced %v, want %v", c.doc, c.ops, ok, c.spliced)
			continue
		}
		if ok {
			compareSplice(t, []byte(c.doc), ops, got)
		}
	}
}

// compareSplice fails t when spliced is not the value applyPatch makes.
func compareSplice(t *testing.T, doc []byte, ops []Op, spliced []byte) {
	t.Helper()
	want, err := applyPatch(doc, ops, time.Time{})
	if err != nil {
		t.Errorf("%s %v: spliced to %s, but applyPatch: %v", doc, ops, spliced, err)
		return
	}
	var g, w any
	if err := json.Unmarshal(spliced, &g); err != nil {
		t.Errorf("%s %v: spliced text %s: %v", doc, ops, spliced, err)
		return
	}
	_ = json.Unmarshal(want, &w)
	if !reflect.DeepEqual(g, w) {
		t.Errorf("%s %v:\nspliced %s\ntree    %s", doc, ops, spliced, want)
	}
}

// FuzzSplice compares spliceOps and applyPatch on any well-formed
// document (as husk encodes it: no repeated members) and a one-operation
// patch.
func FuzzSplice(f *testing.F) {
	for _, c := range spliceCases {
		var ops []Op
		_ = json.Unmarshal([]byte(c.ops), &ops)
		f.Add(c.doc, ops[0].Op, ops[0].Path, string(ops[0].Value))
	}
	f.Fuzz(func(t *testing.T, doc, op, path, value string) {
		if !json.Valid([]byte(doc)) || !json.Valid([]byte(value)) || checkStrict([]byte(doc), nil, false) != nil {
			return
		}
		ops := []Op{{Op: op, Path: path, Value: json.RawMessage(value)}}
		if got, ok := spliceOps([]byte(doc), ops); ok {
			compareSplice(t, []byte(doc), ops, got)
		}
	})
}
