//go:build !husk_nohooks

package hooks_test

import (
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/huskrt/husk/hooks"
	"github.com/huskrt/husk/internal/vocab"
	"github.com/huskrt/husk/policies/sdk"
	"github.com/huskrt/husk/wasmhost"
)

// TestPointsMatchVocab: the engine knows (has an event and rules for)
// every point vocab lists, which the config file accepts and the SDK
// parses, in the same order; TestPointTableIsVocab checks it knows no
// other.
func TestPointsMatchVocab(t *testing.T) {
	var names []string
	for _, p := range hooks.Points() {
		names = append(names, string(p))
		if !p.Valid() {
			t.Errorf("%s is not Valid", p)
		}
	}
	if !slices.Equal(names, vocab.Points()) {
		t.Errorf("hooks.Points() = %q\nvocab.Points() = %q", names, vocab.Points())
	}
	if hooks.Point("container.craete").Valid() {
		t.Error("a misspelt point is valid")
	}
}

// TestEventSchemas: every event says its point, encodes "version": 1 as
// its first member, refuses another version, and every path a patch may
// change exists in it (so that no rule points at nothing).
func TestEventSchemas(t *testing.T) {
	for _, p := range hooks.Points() {
		ev := sampleEvent(p)
		if ev.Point() != p {
			t.Errorf("%T.Point() = %s, want %s", ev, ev.Point(), p)
		}
		b, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(b), `{"version":1,"sandbox":{`) {
			t.Errorf("%s event starts %.40s", p, b)
		}
		fresh := reflect.New(reflect.TypeOf(ev).Elem()).Interface()
		if err := json.Unmarshal([]byte(strings.Replace(string(b), `"version":1`, `"version":2`, 1)), fresh); err == nil {
			t.Errorf("%s event of version 2 decodes", p)
		}
		doc := sdk.ParseValue(b)
		for _, path := range p.Patchable() {
			if !doc.At(path).Exists() {
				t.Errorf("%s: patchable path %s is not in the event %s", p, path, b)
			}
		}
	}
	if got := hooks.ContainerUpdate.Patchable(); len(got) != 0 {
		t.Errorf("container.update is patchable at %q", got)
	}
}

// TestDocsDescribeEveryPoint keeps docs/hooks.md in step with the code:
// every point, every patchable path and every event member is written
// there.
func TestDocsDescribeEveryPoint(t *testing.T) {
	doc, err := os.ReadFile("../docs/hooks.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	for _, p := range hooks.Points() {
		if !strings.Contains(text, "`"+string(p)+"`") {
			t.Errorf("docs/hooks.md does not describe point %s", p)
		}
		for _, path := range p.Patchable() {
			if !strings.Contains(text, "`"+path+"`") {
				t.Errorf("docs/hooks.md does not list %s's patchable path %s", p, path)
			}
		}
		b, _ := json.Marshal(sampleEvent(p))
		for name := range sdk.ParseValue(b).Members() {
			s, _ := name.Str()
			if !strings.Contains(text, `"`+s+`"`) {
				t.Errorf("docs/hooks.md does not show member %q of the %s event", s, p)
			}
		}
	}
	for _, name := range []string{wasmhost.ExportMarker, wasmhost.ExportAlloc, wasmhost.ExportDecide, wasmhost.ExportInit,
		wasmhost.ImportLog, wasmhost.ImportJSONIndex, wasmhost.ImportJSONGet, wasmhost.ImportJSONMatch, wasmhost.ImportSetNew} {
		if !strings.Contains(text, name) {
			t.Errorf("docs/hooks.md does not specify %s", name)
		}
	}
}

// TestIndexersAgree: the SDK indexes JSON itself natively and the host
// does it for modules; both must give the same index.
func TestIndexersAgree(t *testing.T) {
	inputs := []string{``, `{}`, `[1,"a\"b",{"c":[true,false,null]}]`, "\"\xff\"", `{"a":"\u00e9\n"}`, `{"a":1e5,"b":-0.5}`, `{"a":[}`, `"unterminated`, `tru`}
	for _, p := range hooks.Points() {
		b, _ := json.Marshal(sampleEvent(p))
		inputs = append(inputs, string(b))
	}
	for _, in := range inputs {
		if got, want := sdk.Index([]byte(in)), wasmhost.JSONIndex([]byte(in)); !slices.Equal(got, want) {
			t.Errorf("index of %q:\nsdk  %v\nhost %v", in, got, want)
		}
	}
}

func FuzzIndexersAgree(f *testing.F) {
	f.Add([]byte(`{"a":[1,"x",{"b":null}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := sdk.Index(b), wasmhost.JSONIndex(b); !slices.Equal(got, want) {
			t.Fatalf("index of %q differs:\nsdk  %v\nhost %v", b, got, want)
		}
	})
}
