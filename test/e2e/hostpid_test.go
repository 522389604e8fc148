package e2e

import (
	"testing"
	"time"

	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestHostPIDInitExitEndsTheContainer: when the init of a container that
// shares the host's PID namespace exits, the kernel leaves the container's
// other processes running (it kills them only when the init is a PID
// namespace's 1). As with the runc shim, what is left is killed then: a
// running exec ends, and the init's exit (held back until the execs have
// exited) is reported instead of waiting for the exec forever.
func TestHostPIDInitExitEndsTheContainer(t *testing.T) {
	for _, rt := range []string{runc, husk} {
		t.Run(shortRuntime(rt), func(t *testing.T) {
			// The init exits with 3 once /go exists.
			script := "echo ready; while [ ! -e /go ]; do sleep 0.05; done; exit 3"
			s := startTaskOn(t, rt, name(t, ""), []string{"sh", "-c", script}, oci.WithHostNamespace(specs.PIDNamespace))
			s.waitOutput(t, "ready")
			_, ctx := newClient(t)
			long, err := s.task.Exec(ctx, "long", &specs.Process{Args: []string{"/bin/sleep", "1000"}, Cwd: "/"}, cio.NullIO)
			if err != nil {
				t.Fatalf("exec: %v", err)
			}
			longExit, err := long.Wait(ctx)
			if err != nil {
				t.Fatalf("exec wait: %v", err)
			}
			if err := long.Start(ctx); err != nil {
				t.Fatalf("exec start: %v", err)
			}
			touch, err := s.task.Exec(ctx, "touch", &specs.Process{Args: []string{"/bin/touch", "/go"}, Cwd: "/"}, cio.NullIO)
			if err != nil {
				t.Fatalf("exec: %v", err)
			}
			touchExit, err := touch.Wait(ctx)
			if err != nil {
				t.Fatalf("exec wait: %v", err)
			}
			if err := touch.Start(ctx); err != nil {
				t.Fatalf("exec start: %v", err)
			}
			<-touchExit
			if _, err := touch.Delete(ctx); err != nil {
				t.Fatalf("exec delete: %v", err)
			}

			if got := s.waitExit(t); got != 3 {
				t.Fatalf("init exit status = %d, want 3", got)
			}
			select {
			case st := <-longExit:
				if code, _, _ := st.Result(); code != 137 {
					t.Fatalf("the running exec's exit status = %d, want 137 (killed)", code)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the running exec did not end with the init")
			}
		})
	}
}
