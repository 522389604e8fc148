//go:build !husk_nohooks

package hooks_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/huskrt/husk/hooks"
	"github.com/huskrt/husk/runtime/config"
)

// TestDocsKindExample runs the example config of docs/hooks.md §1
// ("Changing hooks and checking hooks") with the built-in policies it
// names: it loads as written, its changing hooks are asked before the
// checking hook written first, and deny-privileged sees their result.
func TestDocsKindExample(t *testing.T) {
	doc, err := os.ReadFile("../docs/hooks.md")
	if err != nil {
		t.Fatal(err)
	}
	const marker = "# Written in any order:"
	_, rest, ok := strings.Cut(string(doc), "```toml\n"+marker)
	if !ok {
		t.Fatalf("docs/hooks.md has no example config starting %q", marker)
	}
	example, _, _ := strings.Cut(marker+rest, "```")
	path := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(path, []byte(example), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, true)
	if err != nil {
		t.Fatalf("the example does not load: %v", err)
	}
	for i, h := range cfg.Hooks { // the built-in policies it names, built here
		cfg.Hooks[i].Module = goModule(t, "../policies/"+strings.TrimSuffix(filepath.Base(h.Module), ".wasm"))
	}
	e := newEngine(t, cfg.Hooks, hooks.Options{})
	if got := e.Hooks(hooks.ContainerCreate); !slices.Equal(got, []string{"resource-defaults", "deny-privileged"}) {
		t.Errorf("container.create asks %q, want the changing hook first", got)
	}

	out, err := e.Run(context.Background(), hooks.ContainerCreate, createEvent(false))
	ev := createEvent(false)
	if err == nil {
		err = out.Decode(ev)
	}
	if err != nil || !out.Allowed || ev.Spec.Linux == nil || ev.Spec.Linux.Resources.Pids == nil || *ev.Spec.Linux.Resources.Pids.Limit != 1024 {
		t.Fatalf("unprivileged: %+v, %v; want allowed with the pids limit", out, err)
	}
	out, err = e.Run(context.Background(), hooks.ContainerCreate, createEvent(true))
	if err != nil || out.Allowed || out.Hook != "deny-privileged" {
		t.Fatalf("privileged: %+v, %v; want denied by deny-privileged", out, err)
	}
	rev := rootfsEvent()
	out, err = e.Run(context.Background(), hooks.ContainerRootfs, rev)
	if err == nil {
		err = out.Decode(rev)
	}
	if err != nil || !out.Allowed || !rev.Readonly {
		t.Fatalf("container.rootfs: %+v, %v; want made read-only", out, err)
	}
}
