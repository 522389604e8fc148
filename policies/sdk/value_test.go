package sdk

import (
	"encoding/json"
	"reflect"
	"testing"
)

const sample = ` {"version":1, "container":{"id":"c1","image":"docker.io/library/busybox:latest"},
 "spec":{"process":{"args":["/bin/sh","-c","echo \"hi\""],"terminal":false,
   "capabilities":{"bounding":["CAP_CHOWN","CAP_SYS_ADMIN"]},"user":{"uid":0,"gid":-5}},
   "root":{"path":"rootfs","readonly":true},"annotations":{"a/b":"x","esc\u0061ped":"\u00e9\ud83d\ude00\n"},
   "nothing":null,"empty":{},"none":[], "pi": 3.25e0}} `

func TestGet(t *testing.T) {
	ev := NewEvent("container.create", []byte(sample))
	str := func(v Value) any { s, ok := v.Str(); return [2]any{s, ok} }
	integer := func(v Value) any { n, ok := v.Int(); return [2]any{n, ok} }
	boolean := func(v Value) any { b, ok := v.Bool(); return [2]any{b, ok} }
	float := func(v Value) any { f, ok := v.Float(); return [2]any{f, ok} }
	tests := []struct {
		name string
		path []string
		get  func(Value) any
		want any
	}{
		{"top-level int", []string{"version"}, integer, [2]any{int64(1), true}},
		{"nested string", []string{"container", "image"}, str, [2]any{"docker.io/library/busybox:latest", true}},
		{"array index", []string{"spec", "process", "args", "2"}, str, [2]any{`echo "hi"`, true}},
		{"index out of range", []string{"spec", "process", "args", "3"}, str, [2]any{"", false}},
		{"negative index", []string{"spec", "process", "args", "-1"}, str, [2]any{"", false}},
		{"bool", []string{"spec", "root", "readonly"}, boolean, [2]any{true, true}},
		{"false", []string{"spec", "process", "terminal"}, boolean, [2]any{false, true}},
		{"negative int", []string{"spec", "process", "user", "gid"}, integer, [2]any{int64(-5), true}},
		{"float is not an int", []string{"spec", "pi"}, integer, [2]any{int64(0), false}},
		{"float", []string{"spec", "pi"}, float, [2]any{3.25, true}},
		{"escaped name, unicode", []string{"spec", "annotations", "escaped"}, str, [2]any{"é😀\n", true}},
		{"name with slash", []string{"spec", "annotations", "a/b"}, str, [2]any{"x", true}},
		{"missing", []string{"spec", "linux", "namespaces"}, str, [2]any{"", false}},
		{"through a string", []string{"container", "id", "x"}, str, [2]any{"", false}},
		{"string is not a bool", []string{"container", "id"}, boolean, [2]any{false, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.get(ev.Get(tt.path...)); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Get(%q) = %v, want %v", tt.path, got, tt.want)
			}
		})
	}
	if ev.Point() != ContainerCreate || ev.Version() != 1 {
		t.Errorf("Point, Version = %q, %d", ev.Point(), ev.Version())
	}
	caps := ev.Get("spec", "process", "capabilities", "bounding")
	if !caps.Contains("CAP_SYS_ADMIN") || caps.Contains("CAP_NET_ADMIN") || caps.Len() != 2 {
		t.Errorf("capabilities %s: Contains/Len wrong", caps.Raw())
	}
	if got := caps.Strings(); !reflect.DeepEqual(got, []string{"CAP_CHOWN", "CAP_SYS_ADMIN"}) {
		t.Errorf("Strings() = %q", got)
	}
	if !ev.Get("spec", "nothing").IsNull() || !ev.Get("spec", "nothing").Exists() || ev.Get("spec", "nope").IsNull() {
		t.Error("null and missing are confused")
	}
	if n := ev.Get("spec", "empty").Len() + ev.Get("spec", "none").Len(); n != 0 {
		t.Errorf("empty containers have %d elements", n)
	}
	if !ev.Get("spec", "annotations", "escaped").Is("é😀\n") || ev.Get("spec", "annotations", "escaped").Is("e") {
		t.Error("Is on an escaped string")
	}
	var names []string
	for k := range ev.Get("container").Members() {
		s, _ := k.Str()
		names = append(names, s)
	}
	if !reflect.DeepEqual(names, []string{"id", "image"}) {
		t.Errorf("Members names %q", names)
	}
}

// TestMalformedReadsAsMissing: values whose extent cannot be found are
// missing. (Inside a container, syntax is checked only as far as a lookup
// reads: husk sends valid JSON.)
func TestMalformedReadsAsMissing(t *testing.T) {
	for _, s := range []string{``, `{`, `{"a":1`, `[1,2`, `"abc`, `tru`, `{"a":1} x`, `{"a":"\`, `{"a":[}`, `nul`} {
		v := ParseValue([]byte(s))
		if v.Exists() {
			t.Errorf("ParseValue(%q) exists: %s", s, v.Raw())
		}
	}
	// A lookup inside a value that is only checked lazily never panics.
	v := ParseValue([]byte(`{"a":{"b":[1,"x\u12"],"c":}, "d" 1}`))
	if s, ok := v.Get("a", "b", "1").Str(); ok {
		t.Errorf("bad escape read as %q", s)
	}
	if v.Get("a", "c").Exists() || v.Get("d").Exists() {
		t.Error("a member without a value exists")
	}
}

// FuzzValue checks the reader against encoding/json: on any input it must
// not panic, and on valid JSON every string it reads must be what
// encoding/json decodes.
func FuzzValue(f *testing.F) {
	f.Add([]byte(sample))
	f.Add([]byte(`{"a":"\ud800","b":"\ud83d\ude00x","c":["\u0000",1e5,-0.5]}`))
	f.Add([]byte(`[[[[[]]]]]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		v := ParseValue(data)
		var want any
		valid := json.Unmarshal(data, &want) == nil
		if valid != v.Exists() && valid {
			t.Fatalf("encoding/json reads %q but ParseValue does not", data)
		}
		walk(t, v, want, valid, 0)
	})
}

// walk visits every value under v, comparing with encoding/json's decoding
// want when the input was valid.
func walk(t *testing.T, v Value, want any, valid bool, depth int) {
	if depth > 64 {
		return
	}
	switch v.Kind() {
	case String:
		s, ok := v.Str()
		if valid && (!ok || s != want) {
			t.Fatalf("Str(%s) = %q, %v; encoding/json: %q", v.Raw(), s, ok, want)
		}
		if valid && !v.Is(s) {
			t.Fatalf("Is(%q) false on %s", s, v.Raw())
		}
	case Array:
		arr, _ := want.([]any)
		for i, e := range v.Elems() {
			var w any
			if i < len(arr) {
				w = arr[i]
			}
			walk(t, e, w, valid && i < len(arr), depth+1)
		}
	case Object:
		obj, _ := want.(map[string]any)
		count := map[string]int{}
		for k := range v.Members() {
			name, _ := k.Str()
			count[name]++
		}
		for k, e := range v.Members() {
			name, _ := k.Str()
			w, ok := obj[name]
			// A repeated name: encoding/json keeps the last, Get the first
			// (husk never sends one); compare only unique names.
			walk(t, e, w, valid && ok && count[name] == 1, depth+1)
		}
	}
}
