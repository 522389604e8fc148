package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/typeurl/v2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/huskrt/husk/test/devenv"
)

// Every bad input gets a clear error through ctr, leaves nothing behind, and
// does not disturb a container that is already running.
func TestBadInput(t *testing.T) {
	needBench(t)
	keep := name(t, "bystander")
	cleanupContainer(t, keep)
	ctr(t, "run", "-d", "--runtime", husk, devenv.BusyboxRef, keep, "sleep", "1000")

	dir := t.TempDir()
	badConfig := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(badConfig, []byte("[runtime]\ndefault_handler = \"vrit\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	unknownKey := filepath.Join(dir, "unknown.toml")
	if err := os.WriteFile(unknownKey, []byte("[log]\nlevel = \"info\"\ncolour = true\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	noGuest := filepath.Join(dir, "no-guest.toml")
	if err := os.WriteFile(noGuest, []byte("[virt]\nguest_image = \""+filepath.Join(dir, "no-guest")+"\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name  string
		flags []string
		image string
		args  []string
		want  []string // all must appear in ctr's error
	}{
		{"config bad value", []string{"--runtime-config-path", badConfig}, devenv.BusyboxRef, []string{"true"},
			[]string{badConfig + ":2:", "runtime.default_handler", `unknown handler "vrit"`}},
		{"config unknown key", []string{"--runtime-config-path", unknownKey}, devenv.BusyboxRef, []string{"true"},
			[]string{unknownKey + ":3:", "log.colour"}},
		{"config missing", []string{"--runtime-config-path", filepath.Join(dir, "nope.toml")}, devenv.BusyboxRef, []string{"true"},
			[]string{filepath.Join(dir, "nope.toml"), "not found"}},
		{"unknown handler", []string{"--annotation", "io.husk.handler=bogus"}, devenv.BusyboxRef, []string{"true"},
			[]string{`unknown handler "bogus"`, "io.husk.handler"}},
		{"virt without guest image", []string{"--runtime-config-path", noGuest, "--annotation", "io.husk.handler=virt"}, devenv.BusyboxRef, []string{"true"},
			[]string{"no guest image in " + filepath.Join(dir, "no-guest"), "make guest"}},
		{"missing binary", nil, devenv.BusyboxRef, []string{"/nope"},
			[]string{"/nope", "no such file or directory"}},
		{"missing rootfs", []string{"--rootfs"}, filepath.Join(dir, "no-rootfs"), []string{"/bin/true"},
			[]string{filepath.Join(dir, "no-rootfs"), "does not exist"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := name(t, string(rune('a'+i)))
			cleanupContainer(t, id)
			args := append([]string{"run", "--rm", "--runtime", husk}, tt.flags...)
			args = append(append(args, tt.image, id), tt.args...)
			msg := ctrErr(t, args...)
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("ctr error lacks %q:\n%s", w, msg)
				}
			}
			requireClean(t, id)
		})
	}

	// Specs containerd accepts but husk must refuse; containerd writes
	// them to the bundle's config.json as they are.
	for _, tt := range []struct {
		name, spec, want string
	}{
		{"spec without process", `{"ociVersion":"1.2.0","root":{"path":"rootfs"}}`, "process is missing"},
		{"spec without root", `{"ociVersion":"1.2.0","process":{"args":["sh"],"cwd":"/"}}`, "root.path is missing"},
		{"spec with empty args", `{"ociVersion":"1.2.0","process":{"args":[],"cwd":"/"},"root":{"path":"rootfs"}}`, "process.args is empty"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			id := name(t, "")
			cl, ctx := newClient(t)
			rec := containers.Container{
				ID:      id,
				Runtime: containers.RuntimeInfo{Name: husk},
				Spec:    &anypb.Any{TypeUrl: specTypeURL(t), Value: []byte(tt.spec)},
			}
			if _, err := cl.ContainerService().Create(ctx, rec); err != nil {
				t.Fatalf("creating container record: %v", err)
			}
			t.Cleanup(func() { _ = cl.ContainerService().Delete(context.WithoutCancel(ctx), id) })
			c, err := cl.LoadContainer(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.NewTask(ctx, cio.NullIO)
			if err == nil {
				t.Fatal("task with a malformed config.json was created")
			}
			for _, w := range []string{"malformed OCI spec", "config.json", tt.want} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error = %v, want it to say %q", err, w)
				}
			}
			requireClean(t, id)
		})
	}

	// The bystander never noticed.
	if out := ctr(t, "task", "ls"); !strings.Contains(out, keep) || !strings.Contains(out, "RUNNING") {
		t.Fatalf("bystander %s is not running any more:\n%s", keep, out)
	}
	if out := ctr(t, "task", "exec", "--exec-id", "still", keep, "echo", "alive"); out != "alive\n" {
		t.Fatalf("exec in bystander = %q", out)
	}
	ctr(t, "task", "kill", "-s", "SIGKILL", keep)
	_ = syscall.SIGKILL
}

func specTypeURL(t *testing.T) string {
	t.Helper()
	a, err := typeurl.MarshalAny(&specs.Spec{Version: specs.Version})
	if err != nil {
		t.Fatal(err)
	}
	return a.GetTypeUrl()
}

var _ = containerd.WithSnapshotCleanup
