package builtin

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/huskrt/husk/policies/internal/moduletest"
)

// TestDocsCSDKExample builds the C SDK example of docs/hooks.md §5 as
// huskctl policy build does (a directory holding it) and asks it.
func TestDocsCSDKExample(t *testing.T) {
	doc, err := os.ReadFile("../../docs/hooks.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "**C with husk's SDK.**")
	if !ok {
		t.Fatal("docs/hooks.md has no C SDK section")
	}
	_, rest, ok = strings.Cut(rest, "```c\n")
	block, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("the C SDK section of docs/hooks.md has no c block")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "policy.c"), []byte(block), 0o644); err != nil {
		t.Fatal(err)
	}
	p := moduletest.MustLoad(t, dir, "")
	event := func(terminal string) string {
		return `{"version":1,"sandbox":{"id":"p"},"container":{"id":"c","image":null},"spec":{"process":{"terminal":` + terminal + `}}}`
	}
	if d := p.Decide(t, "container.create", event("true")); d.Allow || d.Reason != "no terminals" {
		t.Errorf("a terminal: %+v, want denied", d)
	}
	for _, v := range []string{"false", `"true"`, "null"} {
		if d := p.Decide(t, "container.create", event(v)); !d.Allow {
			t.Errorf("terminal %s: %+v, want allowed", v, d)
		}
	}
	if d := p.Decide(t, "process.exec", event("true")); !d.Allow {
		t.Errorf("another point: %+v, want allowed", d)
	}
	if _, err := moduletest.Load(t, dir, `{"x":1}`); !contains(err, "this policy takes no configuration") {
		t.Errorf("a config: %v", err)
	}
}
