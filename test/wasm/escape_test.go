package wasm

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestEscape (R6): a module cannot reach a file outside its container's
// rootfs by "..", by an absolute host path or through symlinks (absolute
// or relative) that point out of it. The runner's "/" is the container's
// root after pivot_root, so the kernel resolves all of these inside it: the
// host's file is simply not there. The control (a file inside) proves the
// probe reads what it can.
func TestEscape(t *testing.T) {
	secret := filepath.Join(escapeDir, "secret")
	paths := []string{
		"/data/hello.txt",                           // control: inside
		secret,                                      // absolute host path
		"../../../../../../../.." + secret,          // relative, climbing
		"/../../../../../.." + secret,               // absolute, climbing
		"/data/../../../../../../../../.." + secret, // climbing from a subdirectory
		"/data/escape-abs",                          // symlink to the host path
		"/data/escape-rel",                          // symlink climbing out
		"/proc/1/root" + secret,                     // through the init's root
	}
	for _, mode := range [][]string{nil, {"--annotation", "io.husk.handler=wasm"}} {
		r := ctrRun(t, "", mode, append([]string{"/bin/conform.wasm", "read"}, paths...)...)
		if r.code != 0 {
			t.Fatalf("probe: exit %d, stderr %q", r.code, r.stderr)
		}
		if strings.Contains(r.stdout, "host secret") {
			t.Fatalf("a module read the host's file:\n%s", r.stdout)
		}
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		if len(lines) != len(paths) || lines[0] != `/data/hello.txt: "hello file"` {
			t.Fatalf("probe output:\n%s", r.stdout)
		}
		for i, l := range lines[1:] {
			if !strings.Contains(l, "error") {
				t.Errorf("%s: %s (want an error)", paths[i+1], l)
			}
		}
	}
}
