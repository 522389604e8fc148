package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/huskrt/husk/test/devenv"
)

// TestErrorsReachTheUserOnce: an error from the shim reaches ctr's user
// once. containerd's errgrpc turns every error joined or wrapped with
// several %w into details that its client appends again, so a bad
// config's list of problems came out three times and an error wrapped as
// "%w: %w" ended in "invalid argument" lines of its own (#13).
func TestErrorsReachTheUserOnce(t *testing.T) {
	needBench(t)
	dir := t.TempDir()
	twoProblems := filepath.Join(dir, "two.toml")
	if err := os.WriteFile(twoProblems, []byte("[log]\ncolour = true\n[runtime]\nstate_dirr = \"/run/x\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for i, tt := range []struct {
		name  string
		flags []string
		once  []string // each must appear exactly once
		most1 []string // each at most once
	}{
		{"config with two problems", []string{"--runtime-config-path", twoProblems},
			[]string{"log.colour", "runtime.state_dirr"}, []string{"invalid argument"}},
		{"unknown handler", []string{"--annotation", "io.husk.handler=bogus"},
			[]string{`unknown handler "bogus"`}, []string{"invalid argument"}},
		{"missing config", []string{"--runtime-config-path", filepath.Join(dir, "nope.toml")},
			[]string{filepath.Join(dir, "nope.toml"), "not found"}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			id := name(t, string(rune('a'+i)))
			cleanupContainer(t, id)
			args := append([]string{"run", "--rm", "--runtime", husk}, tt.flags...)
			msg := ctrErr(t, append(args, devenv.BusyboxRef, id, "true")...)
			for _, w := range tt.once {
				if n := strings.Count(msg, w); n != 1 {
					t.Errorf("ctr's error says %q %d times, want once:\n%s", w, n, msg)
				}
			}
			for _, w := range tt.most1 {
				if n := strings.Count(msg, w); n > 1 {
					t.Errorf("ctr's error says %q %d times, want it once at most:\n%s", w, n, msg)
				}
			}
			requireClean(t, id)
		})
	}
}

// TestRelativeConfigPathRefused: ctr hands --runtime-config-path to the
// shim as it was typed, and the shim does not run in ctr's directory, so
// a relative path is refused with a message that says it must be
// absolute, instead of naming a file that is not found (#13).
func TestRelativeConfigPathRefused(t *testing.T) {
	needBench(t)
	id := name(t, "")
	cleanupContainer(t, id)
	msg := ctrErr(t, "run", "--rm", "--runtime", husk, "--runtime-config-path", "husk.toml", devenv.BusyboxRef, id, "true")
	for _, w := range []string{`"husk.toml"`, "must be an absolute path"} {
		if !strings.Contains(msg, w) {
			t.Errorf("ctr's error lacks %q:\n%s", w, msg)
		}
	}
	requireClean(t, id)
}
