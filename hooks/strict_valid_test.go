package hooks

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// strictCases are texts checkStrict is asked about: well-formed and not,
// fitting their type and not in each way it checks.
var strictCases = []string{
	`{"allow":true}`,
	`{"allow":false,"reason":"no"}`,
	` { "allow" : true , "patch" : [ {"op":"add","path":"/a","value":{"x":[1,2,{"y":null}]}} ] } `,
	`{"allow":true,"allow":false}`,
	`{"ALLOW":true}`,
	`{"allow":true,"patch":[{"op":"add","path":"/a","value":{"k":1,"k":2}}]}`,
	`{"allow":true,"patch":[{"op":"add","path":"/a","oops":1}]}`,
	`{"allow":true,"patch":[{},{"op":"add","op":"x"}]}`,
	`{"allo\u0077":true}`,
	`{"allow\u0000":true}`,
	"{\"\xff\":1}",
	`{"a/b~c":{"d":1,"d":2}}`,
	`{"allow":true}x`,
	`{"allow":true} {}`,
	`{"allow":tru}`,
	`{"allow":true,}`,
	`{"allow"`,
	`[1,2]`,
	`null`,
	`"text"`,
	`12.5e3`,
	`{}`,
	`{"reason":"a\"b\\","allow":true}`,
	`{"version":1,"sandbox":{"id":"p"},"container":{"id":"c"},"spec":null}`,
	`{"version":1,"sandbox":null,"container":{"id":"c"},"spec":{"ociVersion":"1.2.0","process":{"cwd":"/","user":null}}}`,
	`{"version":1,"sandbox":{"id":"p","namespace":"n","handler":"h"},"container":{"id":"c","image":"i"},"spec":{"ociVersion":"1.2.0","process":{"user":{"uid":0,"gid":0},"cwd":"/","args":["a","b"]},"root":{"path":"r"},"linux":{"resources":{"pids":{"limit":5},"memory":{"limit":null}}}}}`,
	`{"version":1,"sandbox":{"id":"p","namespace":"n","handler":"h"},"container":{"id":"c","image":"i"},"spec":{"ociVersion":"1.2.0","process":{"user":{"uid":0,"gid":0},"cwd":"/","args":["a",{"x":1,"x":2}]}}}`,
	`{"version":1,"sandbox":{"id":"p","namespace":"n","handler":"h"},"container":{"id":"c","image":"i"},"spec":{"ociVersion":"1.2.0","annotations":{"a":"1","a":"2"}}}`,
	`{"version":1,"sandbox":{"id":"p","namespace":"n","handler":"h"},"container":{"id":"c","image":"i"},"spec":{"ociVersion":"1.2.0","Process":{}}}`,
}

// strictTypes are the types the cases are checked against.
var strictTypes = []reflect.Type{decisionType, reflect.TypeFor[ContainerCreateEvent](), reflect.TypeFor[specs.Spec](), nil}

// TestStrictValidAsTokens: the byte walker (well-formed text) finds what
// the token walker finds, in the same words, for every case, type and
// completeness; and checkStrict hands text that is not well-formed to
// the token walker.
func TestStrictValidAsTokens(t *testing.T) {
	for _, c := range strictCases {
		for _, typ := range strictTypes {
			for _, complete := range []bool{false, true} {
				compareStrict(t, []byte(c), typ, complete)
			}
		}
	}
	if err := checkStrict([]byte(`{"allow":tru}`), decisionType, false); err == nil || !strings.Contains(err.Error(), "invalid character") {
		t.Errorf("malformed text: %v; want encoding/json's syntax error", err)
	}
	// Text husk made is well-formed; were it not, the byte walker fails
	// rather than read past the end.
	for _, bad := range []string{`{"allow":`, `{"a":[1,`, `{"a":"x`, `[`, ``} {
		if err := checkStrictValid([]byte(bad), decisionType, true); err == nil {
			t.Errorf("byte walker on %q: no error", bad)
		}
	}
}

// compareStrict fails t when the two walkers disagree about b.
func compareStrict(t *testing.T, b []byte, typ reflect.Type, complete bool) {
	t.Helper()
	tokens := checkStrictTokens(b, typ, complete)
	got := checkStrict(b, typ, complete)
	if !json.Valid(b) {
		if !sameStrict(got, tokens) {
			t.Errorf("%s (%v, complete %v): %v; the token walker: %v", b, typ, complete, got, tokens)
		}
		return
	}
	valid := checkStrictValid(b, typ, complete)
	if !sameStrict(valid, tokens) || !sameStrict(got, valid) {
		t.Errorf("%s (%v, complete %v): byte walker %v; token walker %v", b, typ, complete, valid, tokens)
	}
}

// sameStrict reports whether two checks found the same. A missing member
// is any one of those missing, in map order: then only the kind of error
// is compared.
func sameStrict(a, b error) bool {
	if strings.Contains(errText(a), "is missing") && strings.Contains(errText(b), "is missing") {
		return true
	}
	return errText(a) == errText(b)
}

func errText(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// FuzzStrictValid compares the walkers on any text.
func FuzzStrictValid(f *testing.F) {
	for _, c := range strictCases {
		f.Add([]byte(c), false)
	}
	f.Fuzz(func(t *testing.T, b []byte, complete bool) {
		for _, typ := range strictTypes {
			compareStrict(t, b, typ, complete)
		}
	})
}
