package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestOCIHooks runs a container with every kind of OCI hook under runc and
// under husk: the hooks run, in the same order, with the same state on stdin.
func TestOCIHooks(t *testing.T) {
	needBench(t)
	logs := map[string]string{}
	for _, rt := range []string{runc, husk} {
		dir := t.TempDir()
		log := filepath.Join(dir, "hooks.log")
		// A host hook records its name and the container status it is
		// given on stdin (the OCI state JSON).
		host := func(name string) specs.Hook {
			return specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c",
				`read -r state; status=$(echo "$state" | sed -n 's/.*"status": *"\([a-z]*\)".*/\1/p'); echo "` + name + ` $status" >> ` + log}}
		}
		// startContainer runs inside the container, before the program.
		inside := specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", "echo startContainer > /tmp/start.log"}}
		withHooks := func(_ context.Context, _ oci.Client, _ *containers.Container, s *specs.Spec) error {
			s.Hooks = &specs.Hooks{
				Prestart:       []specs.Hook{host("prestart")}, //nolint:staticcheck // deprecated, still run by runc
				CreateRuntime:  []specs.Hook{host("createRuntime")},
				Poststart:      []specs.Hook{host("poststart")},
				Poststop:       []specs.Hook{host("poststop")},
				StartContainer: []specs.Hook{inside},
			}
			return nil
		}
		id := name(t, strings.TrimPrefix(rt, "io.containerd."))
		s := startTaskOn(t, rt, id, []string{"sh", "-c", "cat /tmp/start.log; echo ready; sleep 1000"}, withHooks)
		s.waitOutput(t, "ready")
		if !strings.HasPrefix(s.output.String(), "startContainer\n") {
			t.Errorf("%s: startContainer hook did not run in the container: %q", rt, s.output.String())
		}
		_, ctx := newClient(t)
		if err := s.task.Kill(ctx, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		s.waitExit(t)
		if _, err := s.task.Delete(ctx); err != nil {
			t.Fatalf("%s: delete: %v", rt, err)
		}
		// poststop runs at delete; give the hook process a moment.
		deadline := time.Now().Add(5 * time.Second)
		for {
			b, _ := os.ReadFile(log)
			logs[rt] = string(b)
			if strings.Contains(logs[rt], "poststop") || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Logf("%s hooks:\n%s", rt, logs[rt])
	}
	for _, want := range []string{"prestart creating", "createRuntime creating", "poststart created", "poststop stopped"} {
		if !strings.Contains(logs[husk], want+"\n") {
			t.Errorf("husk hook log lacks %q", want)
		}
	}
	if logs[husk] != logs[runc] {
		t.Fatalf("hooks differ:\nrunc:\n%s\nhusk:\n%s", logs[runc], logs[husk])
	}
}

var _ = containerd.WithSnapshotCleanup
