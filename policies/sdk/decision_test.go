package sdk

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestDecisionJSON(t *testing.T) {
	tests := []struct {
		name string
		d    Decision
		want string
	}{
		{"allow", Allow(), `{"allow":true}`},
		{"deny", Deny(`no "privileged" containers`), `{"allow":false,"reason":"no \"privileged\" containers"}`},
		{"patch", Patch(
			Replace("/readonly", true),
			Add("/process/env/-", "A=1"),
			Remove("/spec/linux/seccomp"),
			Move("/a", "/b"),
			Copy("/a", "/c"),
			Test("/n", int64(-3)),
			Add("/m", map[string]string{"z": "1", "a": "2"}),
			Add("/l", []string{"x", "y"}),
			Add("/f", 0.5),
			Add("/null", nil),
			Add("/raw", RawJSON(`{"k":[1]}`)),
			Add("/v", ParseValue([]byte(` [true] `))),
		), `{"allow":true,"patch":[` +
			`{"op":"replace","path":"/readonly","value":true},` +
			`{"op":"add","path":"/process/env/-","value":"A=1"},` +
			`{"op":"remove","path":"/spec/linux/seccomp"},` +
			`{"op":"move","path":"/b","from":"/a"},` +
			`{"op":"copy","path":"/c","from":"/a"},` +
			`{"op":"test","path":"/n","value":-3},` +
			`{"op":"add","path":"/m","value":{"a":"2","z":"1"}},` +
			`{"op":"add","path":"/l","value":["x","y"]},` +
			`{"op":"add","path":"/f","value":0.5},` +
			`{"op":"add","path":"/null","value":null},` +
			`{"op":"add","path":"/raw","value":{"k":[1]}},` +
			`{"op":"add","path":"/v","value":[true]}]}`},
		{"deny drops the patch", Decision{reason: "no", ops: []Op{Remove("/x")}}, `{"allow":false,"reason":"no"}`},
		{"unsupported value fails closed", Patch(Add("/x", struct{}{})),
			`{"allow":false,"reason":"policy error: add /x: unsupported value type (want nil, bool, string, int, int32, int64, uint32, uint64, float64, []string, map[string]string, Value or RawJSON)"}`},
		{"bad raw JSON fails closed", Patch(Add("/x", RawJSON(`{`))), `{"allow":false,"reason":"policy error: add /x: RawJSON is not one JSON value"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.d.JSON()
			if string(got) != tt.want {
				t.Errorf("JSON() =\n%s\nwant\n%s", got, tt.want)
			}
			if !json.Valid(got) {
				t.Errorf("JSON() is not valid JSON: %s", got)
			}
		})
	}
}

func TestPointer(t *testing.T) {
	if got := Pointer("spec", "annotations", "io.husk/x~y", "0"); got != "/spec/annotations/io.husk~1x~0y/0" {
		t.Errorf("Pointer = %q", got)
	}
	if got := Pointer(); got != "" {
		t.Errorf("Pointer() = %q", got)
	}
}

// FuzzAppendString checks the string encoder against encoding/json: what
// it writes decodes to the input (with invalid UTF-8 replaced).
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "quote\" back\\ nl\n tab\t nul\x00 del\x7f", "é😀", "\xff\xfe", "\u2028<>&"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := appendString(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("appendString(%q) = %s: %v", s, b, err)
		}
		ref, _ := json.Marshal(s)
		var want string
		_ = json.Unmarshal(ref, &want)
		if got != want {
			t.Fatalf("appendString(%q) decodes to %q, encoding/json's encoding to %q", s, got, want)
		}
		if v, _ := ParseValue(b).Str(); !reflect.DeepEqual(v, got) {
			t.Fatalf("Str(appendString(%q)) = %q, encoding/json %q", s, v, got)
		}
	})
}

func TestRegistration(t *testing.T) {
	defer func(h func(Event) Decision, c func(Value) error) { handler, configure = h, c }(handler, configure)
	handler, configure = nil, nil
	if d := Decide("container.create", []byte(`{}`)); d.Allowed() || !strings.Contains(d.Reason(), "no handler") {
		t.Errorf("Decide without handler = %s", d.JSON())
	}
	var seen string
	OnInit(func(c Value) error { seen, _ = c.Get("k").Str(); return nil })
	Handle(func(ev Event) Decision { return Deny(ev.PointName() + " " + seen) })
	if err := Configure([]byte(`{"k":"v"}`)); err != nil {
		t.Fatal(err)
	}
	if d := Decide("process.exec", []byte(`{}`)); d.Reason() != "process.exec v" {
		t.Errorf("Decide = %s", d.JSON())
	}
}

func TestPlainASCII(t *testing.T) {
	for s, want := range map[string]bool{
		"": true, "a": true, "privileged container: capability CAP_SYS_ADMIN in the bounding set": true,
		"exactly8": true, "sixteen bytes ok": true, "~ tilde and } braces {": true,
		`a"b`: false, `a\b`: false, "tab\there": false, "é": false, "nine byte\x01": false,
		"0123456789abcde\"": false, "\"123456789abcdef": false, "0123456\x7f": true, "\x1f": false,
	} {
		if got := plainASCII([]byte(s)); got != want {
			t.Errorf("plainASCII(%q) = %v, want %v", s, got, want)
		}
	}
}

// TestDenyCutsLongReasons: a reason past MaxReason is cut at a character's
// start, with "…", to at most MaxReason bytes; a short one is kept.
func TestDenyCutsLongReasons(t *testing.T) {
	if r := Deny("short").Reason(); r != "short" {
		t.Errorf("short reason became %q", r)
	}
	r := Deny("x" + strings.Repeat("é", 4096)).Reason()
	if len(r) > MaxReason || !strings.HasSuffix(r, "é…") || !utf8.ValidString(r) {
		t.Errorf("long reason cut to %d bytes, ending %q", len(r), r[len(r)-8:])
	}
}
