// Package install tests `make install` and `make uninstall` into a DESTDIR,
// as a packager or an operator runs them.
package install

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// mk runs make in the repository with args; the guest image is taken as
// built (make guest is the test run's, not this test's).
func mk(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "make", append([]string{"-s", "-o", "guest"}, args...)...)
	cmd.Dir = repoRoot(t)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

// TestInstallHypervisor: make install HYPERVISOR=qemu|builtin puts the
// binaries, the matching configuration and the guest image under DESTDIR
// and PREFIX; a second install keeps the operator's edited configuration;
// uninstall removes what it installed and leaves the edited file.
func TestInstallHypervisor(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and installs; skipped with -short")
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Skipf("no make: %v", err)
	}
	root := repoRoot(t)
	if !exists(filepath.Join(root, ".tools", "guest", "manifest.json")) {
		if os.Getenv("CI") == "true" {
			t.Fatal("no guest image in .tools/guest: make test builds it (make guest)")
		}
		t.Skip("no guest image in .tools/guest (make guest)")
	}
	for _, hv := range []string{"qemu", "builtin"} {
		t.Run(hv, func(t *testing.T) {
			dest := t.TempDir()
			// BIN apart from the repository's bin/: other tests run the
			// shim from there, and a running binary cannot be rewritten.
			vars := []string{"DESTDIR=" + dest, "PREFIX=/opt/husk", "HYPERVISOR=" + hv, "BIN=" + t.TempDir()}
			mk(t, append([]string{"install"}, vars...)...)
			for _, b := range []string{"containerd-shim-husk-v2", "huskctl", "husk-wasm-runner", "husk-vmm"} {
				if st, err := os.Stat(filepath.Join(dest, "opt/husk/bin", b)); err != nil || st.Mode().Perm() != 0o755 {
					t.Errorf("binary %s: %v", b, err)
				}
			}
			for _, f := range []string{"vmlinuz", "initrd.img", "manifest.json"} {
				if !exists(filepath.Join(dest, "var/lib/husk/guest", f)) {
					t.Errorf("guest image file %s not installed", f)
				}
			}
			cfg := filepath.Join(dest, "etc/husk/config.toml")
			got, err := os.ReadFile(cfg)
			want, _ := os.ReadFile(filepath.Join(root, "examples", "config-"+hv+".toml"))
			if err != nil || string(got) != string(want) {
				t.Fatalf("installed configuration is not examples/config-%s.toml: %v", hv, err)
			}
			// The installed configuration is valid and names the backend
			// and the installed guest image.
			out, err := exec.Command(filepath.Join(dest, "opt/husk/bin/huskctl"), "config", "dump", "--config", cfg).CombinedOutput()
			if err != nil || !strings.Contains(string(out), `hypervisor = '`+hv+`'`) && !strings.Contains(string(out), `hypervisor = "`+hv+`"`) {
				t.Errorf("huskctl config dump of the installed configuration: %v\n%s", err, out)
			}
			if !strings.Contains(string(got), `guest_image = "/var/lib/husk/guest"`) {
				t.Errorf("the configuration does not name the installed guest image")
			}
			// And it passes the check an operator runs before restarting
			// containerd (its default handler is linux: nothing of this host's
			// VM support decides it).
			if out, err := exec.Command(filepath.Join(dest, "opt/husk/bin/huskctl"), "config", "check", "--config", cfg).CombinedOutput(); err != nil || !strings.HasSuffix(string(out), "ok\n") {
				t.Errorf("huskctl config check of the installed configuration: %v\n%s", err, out)
			}

			// An operator edits it; a reinstall keeps the edit.
			edited := string(got) + "\n# the operator's\n"
			if err := os.WriteFile(cfg, []byte(edited), 0o644); err != nil {
				t.Fatal(err)
			}
			mk(t, append([]string{"install"}, vars...)...)
			if b, _ := os.ReadFile(cfg); string(b) != edited {
				t.Errorf("a reinstall overwrote the operator's configuration")
			}
			// uninstall: binaries and guest image go, the edited file stays.
			mk(t, append([]string{"uninstall"}, vars...)...)
			for _, p := range []string{"opt/husk/bin/huskctl", "opt/husk/bin/containerd-shim-husk-v2", "var/lib/husk/guest/manifest.json", "var/lib/husk/guest"} {
				if exists(filepath.Join(dest, p)) {
					t.Errorf("%s left after uninstall", p)
				}
			}
			if b, _ := os.ReadFile(cfg); string(b) != edited {
				t.Errorf("uninstall removed the operator's edited configuration")
			}
			// Unchanged, the configuration goes with the rest.
			if err := os.Remove(cfg); err != nil {
				t.Fatal(err)
			}
			mk(t, append([]string{"install"}, vars...)...)
			mk(t, append([]string{"uninstall"}, vars...)...)
			if exists(cfg) {
				t.Errorf("uninstall kept the configuration it installed unchanged")
			}
		})
	}
}

// An unknown HYPERVISOR is refused before anything is built.
func TestInstallUnknownHypervisor(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skipf("no make: %v", err)
	}
	cmd := exec.Command("make", "-s", "install", "HYPERVISOR=xen", "DESTDIR="+t.TempDir())
	cmd.Dir = repoRoot(t)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "unknown HYPERVISOR 'xen': want builtin or qemu") {
		t.Errorf("make install HYPERVISOR=xen: %v\n%s", err, out)
	}
}
