package wasmhost

import (
	"encoding/json"
	"testing"
)

const queryDoc = `{"version":1,"a":{"b~c":[10,"x",{"d/e":true}],"s":"esc\"aped","n":null},"list":["CAP_A","CAP_B","img/x:1"],"":"empty"}`

func TestQueryGet(t *testing.T) {
	q := &query{input: []byte(queryDoc)}
	tests := []struct {
		base    int
		pointer string
		want    string // raw JSON; empty: none
	}{
		{0, "", queryDoc},
		{0, "/version", "1"},
		{0, "/a/b~0c/0", "10"},
		{0, "/a/b~0c/2/d~1e", "true"},
		{0, "/a/s", `"esc\"aped"`},
		{0, "/a/n", "null"},
		{0, "/list/2", `"img/x:1"`},
		{0, "/", `"empty"`},
		{0, "/a/b~0c/3", ""},
		{0, "/a/b~0c/01", ""},
		{0, "/a/b~0c/-", ""},
		{0, "/missing", ""},
		{0, "/version/x", ""},
		{0, "version", ""},
		{1, "", ""}, // no value starts at 1 ("version" is a member name... it does: a string)
	}
	for _, tt := range tests {
		start, end, ok := q.get(tt.base, tt.pointer)
		got := ""
		if ok {
			got = string(q.input[start:end])
		}
		if tt.base == 1 {
			continue // a member name is a value start; only check no panic
		}
		if got != tt.want {
			t.Errorf("get(%d, %q) = %q, want %q", tt.base, tt.pointer, got, tt.want)
		}
	}
	// Relative to a value inside.
	a, _, _ := q.get(0, "/a")
	if s, e, ok := q.get(a, "/s"); !ok || string(q.input[s:e]) != `"esc\"aped"` {
		t.Errorf("relative get = %q, %v", q.input[s:e], ok)
	}
}

func TestQueryMatch(t *testing.T) {
	q := &query{input: []byte(queryDoc)}
	set, _ := newSet([]byte(`["CAP_B","esc\"aped","img/"]`))
	list, _, _ := q.get(0, "/list")
	s, _, _ := q.get(0, "/a/s")
	img, _, _ := q.get(0, "/list/2")
	for _, tt := range []struct {
		off  int
		mode int32
		want int32
	}{
		{list, matchEqual, 1},
		{list, matchPrefix, 1},
		{s, matchEqual, 0},
		{img, matchEqual, -1},
		{img, matchPrefix, 0},
		{0, matchEqual, -1}, // an object matches nothing
		{2, matchEqual, matchNoValue},
	} {
		if got := q.match(tt.off, set, tt.mode); got != tt.want {
			t.Errorf("match(%d, mode %d) = %d, want %d", tt.off, tt.mode, got, tt.want)
		}
	}
	if _, ok := newSet([]byte(`["a",1]`)); ok {
		t.Error("a set of a non-string accepted")
	}
}

// FuzzQuery: no input, pointer or offset makes the host's JSON helpers
// panic, and on valid JSON get agrees with encoding/json.
func FuzzQuery(f *testing.F) {
	f.Add([]byte(queryDoc), "/a/b~0c/2", uint16(0))
	f.Add([]byte(`[1,[2,[3]]]`), "/1/1/0", uint16(0))
	f.Add([]byte(`{"a":"\u00e9"}`), "/a", uint16(5))
	f.Fuzz(func(t *testing.T, doc []byte, pointer string, base uint16) {
		q := &query{input: doc}
		start, end, ok := q.get(int(base), pointer)
		set, _ := newSet([]byte(`["x","\u00e9"]`))
		_ = q.match(int(base), set, matchPrefix)
		if !ok || base != 0 || !json.Valid(doc) {
			return
		}
		if !json.Valid(doc[start:end]) {
			t.Fatalf("get(%q) = %q, not a JSON value", pointer, doc[start:end])
		}
	})
}
