//go:build !husk_nohooks

package hooks_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/huskrt/husk/hooks"
)

// TestApplyPatchRFC6902 runs the examples of RFC 6902 appendix A, and the
// edge cases around them.
func TestApplyPatchRFC6902(t *testing.T) {
	tests := []struct {
		name       string
		doc, patch string
		want       string // empty: the patch fails
	}{
		{"A.1 add an object member", `{"foo":"bar"}`, `[{"op":"add","path":"/baz","value":"qux"}]`, `{"baz":"qux","foo":"bar"}`},
		{"A.2 add an array element", `{"foo":["bar","baz"]}`, `[{"op":"add","path":"/foo/1","value":"qux"}]`, `{"foo":["bar","qux","baz"]}`},
		{"A.3 remove an object member", `{"baz":"qux","foo":"bar"}`, `[{"op":"remove","path":"/baz"}]`, `{"foo":"bar"}`},
		{"A.4 remove an array element", `{"foo":["bar","qux","baz"]}`, `[{"op":"remove","path":"/foo/1"}]`, `{"foo":["bar","baz"]}`},
		{"A.5 replace a value", `{"baz":"qux","foo":"bar"}`, `[{"op":"replace","path":"/baz","value":"boo"}]`, `{"baz":"boo","foo":"bar"}`},
		{"A.6 move a value", `{"foo":{"bar":"baz","waldo":"fred"},"qux":{"corge":"grault"}}`, `[{"op":"move","from":"/foo/waldo","path":"/qux/thud"}]`,
			`{"foo":{"bar":"baz"},"qux":{"corge":"grault","thud":"fred"}}`},
		{"A.7 move an array element", `{"foo":["all","grass","cows","eat"]}`, `[{"op":"move","from":"/foo/1","path":"/foo/3"}]`, `{"foo":["all","cows","eat","grass"]}`},
		{"A.8 test a value: success", `{"baz":"qux","foo":["a",2,"c"]}`, `[{"op":"test","path":"/baz","value":"qux"},{"op":"test","path":"/foo/1","value":2}]`, `{"baz":"qux","foo":["a",2,"c"]}`},
		{"A.9 test a value: error", `{"baz":"qux"}`, `[{"op":"test","path":"/baz","value":"bar"}]`, ""},
		{"A.10 add a nested member object", `{"foo":"bar"}`, `[{"op":"add","path":"/child","value":{"grandchild":{}}}]`, `{"child":{"grandchild":{}},"foo":"bar"}`},
		{"A.12 add to a nonexistent target", `{"foo":"bar"}`, `[{"op":"add","path":"/baz/bat","value":"qux"}]`, ""},
		{"A.14 ~ escape ordering", `{"/":9,"~1":10}`, `[{"op":"test","path":"/~01","value":10}]`, `{"/":9,"~1":10}`},
		{"A.15 comparing strings and numbers", `{"/":9,"~1":10}`, `[{"op":"test","path":"/~01","value":"10"}]`, ""},
		{"A.16 add an array value", `{"foo":["bar"]}`, `[{"op":"add","path":"/foo/-","value":["abc","def"]}]`, `{"foo":["bar",["abc","def"]]}`},

		{"add replaces an existing member", `{"a":1}`, `[{"op":"add","path":"/a","value":2}]`, `{"a":2}`},
		{"add at the end index", `{"a":[1]}`, `[{"op":"add","path":"/a/1","value":2}]`, `{"a":[1,2]}`},
		{"add past the end", `{"a":[1]}`, `[{"op":"add","path":"/a/2","value":2}]`, ""},
		{"add with a leading zero index", `{"a":[1,2]}`, `[{"op":"add","path":"/a/01","value":0}]`, ""},
		{"add the whole document", `{"a":1}`, `[{"op":"add","path":"","value":[1]}]`, `[1]`},
		{"replace a missing member", `{"a":1}`, `[{"op":"replace","path":"/b","value":2}]`, ""},
		{"replace with null", `{"a":1}`, `[{"op":"replace","path":"/a","value":null}]`, `{"a":null}`},
		{"remove the whole document", `{"a":1}`, `[{"op":"remove","path":""}]`, ""},
		{"remove a missing member", `{"a":1}`, `[{"op":"remove","path":"/b"}]`, ""},
		{"remove -", `{"a":[1]}`, `[{"op":"remove","path":"/a/-"}]`, ""},
		{"move into itself", `{"a":{"b":1}}`, `[{"op":"move","from":"/a","path":"/a/c"}]`, ""},
		{"move onto itself", `{"a":{"b":1}}`, `[{"op":"move","from":"/a","path":"/a"}]`, `{"a":{"b":1}}`},
		{"move from a missing member", `{"a":1}`, `[{"op":"move","from":"/b","path":"/c"}]`, ""},
		{"copy is deep", `{"a":{"b":[1]}}`, `[{"op":"copy","from":"/a","path":"/c"},{"op":"add","path":"/c/b/-","value":2}]`, `{"a":{"b":[1]},"c":{"b":[1,2]}}`},
		{"test numbers numerically", `{"n":1.0,"m":18446744073709551615}`, `[{"op":"test","path":"/n","value":1},{"op":"test","path":"/m","value":18446744073709551615}]`, `{"m":18446744073709551615,"n":1.0}`},
		{"test large integers exactly", `{"m":18446744073709551615}`, `[{"op":"test","path":"/m","value":18446744073709551614}]`, ""},
		{"test objects regardless of order", `{"o":{"a":1,"b":[true,null]}}`, `[{"op":"test","path":"/o","value":{"b":[true,null],"a":1}}]`, `{"o":{"a":1,"b":[true,null]}}`},
		{"test arrays in order", `{"l":[1,2]}`, `[{"op":"test","path":"/l","value":[2,1]}]`, ""},
		{"all or nothing", `{"a":1}`, `[{"op":"add","path":"/b","value":2},{"op":"remove","path":"/zz"}]`, ""},
		{"numbers keep their text", `{"big":12345678901234567890,"f":1e400}`, `[{"op":"add","path":"/x","value":1}]`, `{"big":12345678901234567890,"f":1e400,"x":1}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ops []hooks.Op
			if err := json.Unmarshal([]byte(tt.patch), &ops); err != nil {
				t.Fatal(err)
			}
			got, err := hooks.ApplyPatch([]byte(tt.doc), ops)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("applied: %s", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("ApplyPatch: %v", err)
			}
			if string(got) != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestApplyPatchBoundsCopies(t *testing.T) {
	// Each copy doubles the document: without a budget 30 operations would
	// build a billion values.
	ops := make([]hooks.Op, 30)
	for i := range ops {
		ops[i] = hooks.Op{Op: "copy", From: "/a", Path: "/a/x" + strconv.Itoa(i)}
	}
	_, err := hooks.ApplyPatch([]byte(`{"a":{"v":[1,2,3,4,5,6,7,8]}}`), ops)
	if err == nil || !strings.Contains(err.Error(), "duplicate too much") {
		t.Fatalf("ApplyPatch = %v, want the copy budget exceeded", err)
	}
}

func TestParseDecision(t *testing.T) {
	tests := []struct {
		in   string
		want hooks.Decision
		err  string
	}{
		{in: `{"allow":true}`, want: hooks.Decision{Allow: true}},
		{in: ` {"allow":false,"reason":"no"} `, want: hooks.Decision{Reason: "no"}},
		{in: `{"allow":true,"patch":[{"op":"replace","path":"/a","value": { "b" : 1 } },{"op":"remove","path":"/c"},{"op":"move","from":"/d","path":"/e"}]}`,
			want: hooks.Decision{Allow: true, Patch: []hooks.Op{
				{Op: "replace", Path: "/a", Value: json.RawMessage(`{"b":1}`)},
				{Op: "remove", Path: "/c"},
				{Op: "move", Path: "/e", From: "/d"},
			}}},
		{in: `{"allow":true,"patch":[{"op":"add","path":"/a","value":null}]}`, want: hooks.Decision{Allow: true, Patch: []hooks.Op{{Op: "add", Path: "/a", Value: json.RawMessage(`null`)}}}},
		{in: ``, err: "EOF"},
		{in: `not json`, err: "invalid character"},
		{in: `{"allow":"yes"}`, err: "cannot unmarshal string"},
		{in: `{"reason":"x"}`, err: `no "allow" member`},
		{in: `{"allow":true,"extra":1}`, err: `unknown member "extra"`},
		{in: `{"allow":true} {}`, err: "data after the JSON value"},
		{in: `[{"allow":true}]`, err: "cannot unmarshal array"},
		{in: `{"allow":true,"patch":[{"op":"add","path":"/a"}]}`, err: `add needs a "value"`},
		{in: `{"allow":true,"patch":[{"op":"remove","path":"/a","value":1}]}`, err: `remove takes no "value"`},
		{in: `{"allow":true,"patch":[{"op":"copy","path":"/a"}]}`, err: `copy needs a "from"`},
		{in: `{"allow":true,"patch":[{"op":"add","path":"/a","from":"/b","value":1}]}`, err: `add takes no "from"`},
		{in: `{"allow":true,"patch":[{"op":"frob","path":"/a"}]}`, err: `unknown operation "frob"`},
		{in: `{"allow":true,"patch":[{"op":"remove","path":"a"}]}`, err: "must be empty or start with /"},
		{in: `{"allow":true,"patch":[{"op":"remove","path":"/a~2"}]}`, err: "bad escape"},
		{in: `{"allow":true,"patch":[{"path":"/a"}]}`, err: `needs "op" and "path"`},
		{in: `{"allow":true,"patch":[{"op":"remove","path":"/a","valeu":1}]}`, err: `unknown member "valeu"`},
		// Exact member names, none repeated, at any depth: encoding/json
		// alone matches names case-insensitively and keeps the last of
		// repeated ones.
		{in: `{"ALLOW":true}`, err: `unknown member "ALLOW" (names are case-sensitive: "allow")`},
		{in: `{"allow":false,"Reason":"x"}`, err: `unknown member "Reason"`},
		{in: `{"allow":true,"patch":[{"OP":"remove","path":"/a"}]}`, err: `/patch/0: unknown member "OP"`},
		{in: `{"allow":false,"allow":true}`, err: `member "allow" appears twice`},
		{in: `{"allow":true,"patch":[{"op":"add","path":"/process/user","value":{"uid":1000,"gid":1000,"uid":0}}]}`,
			err: `/patch/0/value: member "uid" appears twice`},
	}
	for _, tt := range tests {
		got, err := hooks.ParseDecision([]byte(tt.in))
		if tt.err != "" {
			if err == nil || !errors.Is(err, hooks.ErrBadDecision) || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseDecision(%s) = %+v, %v; want a bad decision saying %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseDecision(%s) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}

	long := `{"allow":false,"reason":"` + strings.Repeat("é", 600) + "\xff" + `"}`
	d, err := hooks.ParseDecision([]byte(long))
	if err != nil || len(d.Reason) > 1024+len("…") || !strings.HasSuffix(d.Reason, "é…") {
		t.Errorf("long reason: %d bytes, %v", len(d.Reason), err)
	}
}

// FuzzDecision feeds arbitrary module output through what the engine does
// with it: parse the decision, check its patch against a point's rules,
// apply it to that point's event. Nothing may panic; a patch that passes
// must leave valid JSON, and paths outside the rules must never pass.
// The seed corpus is in testdata/fuzz/FuzzDecision.
func FuzzDecision(f *testing.F) {
	for _, s := range []string{
		`{"allow":true}`,
		`{"allow":false,"reason":"privileged container"}`,
		`{"allow":true,"patch":[{"op":"replace","path":"/readonly","value":true}]}`,
		`{"allow":true,"patch":[{"op":"add","path":"/process/env/-","value":"A=1"},{"op":"copy","from":"/process/env/0","path":"/process/env/0"}]}`,
		`{"allow":true,"patch":[{"op":"move","from":"/process/env","path":"/process/user/x"}]}`,
		`{"allow":true,"patch":[{"op":"test","path":"/container/id","value":"c"},{"op":"remove","path":"/interfaces/0"}]}`,
	} {
		f.Add([]byte(s), uint8(0))
	}
	events := map[hooks.Point][]byte{}
	for _, p := range hooks.Points() {
		b, err := json.Marshal(sampleEvent(p))
		if err != nil {
			f.Fatal(err)
		}
		events[p] = b
	}
	all := hooks.Points()
	f.Fuzz(func(t *testing.T, data []byte, which uint8) {
		d, err := hooks.ParseDecision(data)
		if err != nil {
			return
		}
		point := all[int(which)%len(all)]
		if hooks.CheckOps(point, d.Patch) != nil {
			return
		}
		for _, op := range d.Patch {
			if op.Op == "test" {
				continue
			}
			if !withinRules(point, op.Path) || (op.From != "" && !withinRules(point, op.From)) {
				t.Fatalf("%s: %s %s (from %q) passed the rules", point, op.Op, op.Path, op.From)
			}
		}
		out, err := hooks.ApplyPatch(events[point], d.Patch)
		if err == nil && !json.Valid(out) {
			t.Fatalf("patched event is not JSON: %s", out)
		}
	})
}

// withinRules is an independent statement of the rules: the path is at or
// below one of the point's patchable paths, compared as unescaped tokens.
func withinRules(p hooks.Point, path string) bool {
	for _, allowed := range p.Patchable() {
		if path == allowed || strings.HasPrefix(path, allowed+"/") {
			return true
		}
	}
	return false
}

// sampleEvent returns an event of p with lists and maps to patch.
func sampleEvent(p hooks.Point) hooks.Event {
	sb := hooks.Sandbox{ID: "s", Annotations: hooks.Map{"a": "b"}}
	c := hooks.Container{ID: "c"}
	proc := hooks.Process{Args: hooks.List{"sh"}, Env: hooks.List{"A=1"}}
	switch p {
	case hooks.SandboxCreate:
		return &hooks.SandboxCreateEvent{Sandbox: sb}
	case hooks.SandboxVM:
		return &hooks.SandboxVMEvent{Sandbox: sb, VM: hooks.VM{VCPUs: 1, KernelParams: hooks.List{"quiet"}}}
	case hooks.SandboxNetwork:
		return &hooks.SandboxNetworkEvent{Sandbox: sb, Interfaces: []hooks.Interface{{Name: "eth0"}}, Routes: []hooks.Route{{Destination: "default"}}}
	case hooks.ContainerCreate:
		return &hooks.ContainerCreateEvent{Sandbox: sb, Container: c, Spec: createEvent(true).Spec}
	case hooks.ContainerRootfs:
		return &hooks.ContainerRootfsEvent{Sandbox: sb, Container: c}
	case hooks.ContainerMount:
		return &hooks.ContainerMountEvent{Sandbox: sb, Container: c, Mount: hooks.Mount{Destination: "/d", Options: hooks.List{"rbind"}}}
	case hooks.ContainerCgroups:
		return &hooks.ContainerCgroupsEvent{Sandbox: sb, Container: c}
	case hooks.ContainerStart:
		return &hooks.ContainerStartEvent{Sandbox: sb, Container: c, Process: proc}
	case hooks.ProcessExec:
		return &hooks.ProcessExecEvent{Sandbox: sb, Container: c, ExecID: "e", Process: proc}
	case hooks.ContainerUpdate:
		return &hooks.ContainerUpdateEvent{Sandbox: sb, Container: c}
	case hooks.ContainerDelete:
		return &hooks.ContainerDeleteEvent{Sandbox: sb, Container: c}
	}
	return &hooks.SandboxDeleteEvent{Sandbox: sb}
}

// TestReasonIsEscaped: a deny reason reaches logs and the user's terminal
// (ctr, crictl): newlines and escape sequences in it are escaped.
func TestReasonIsEscaped(t *testing.T) {
	d, err := hooks.ParseDecision([]byte(`{"allow":false,"reason":"no\ntime=x level=INFO msg=allowed \u001b[2J\u009b\u202e"}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := `no\ntime=x level=INFO msg=allowed \x1b[2J\u009b\u202e`; d.Reason != want {
		t.Errorf("reason %q, want %q", d.Reason, want)
	}
}
