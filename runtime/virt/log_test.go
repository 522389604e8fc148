package virt

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/huskrt/husk/internal/logging"
	"github.com/huskrt/husk/runtime/handler"
)

// TestLogsNameTheSandboxOnce: the runtime puts the sandbox's id in the
// logger it hands the handler; the handler's records must not add it a
// second time (the shim's log had "sandbox=pod1 sandbox=pod1").
func TestLogsNameTheSandboxOnce(t *testing.T) {
	e := newEnv(t)
	var buf bytes.Buffer
	ctx := logging.WithLogger(e.ctx, slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	ctx = logging.With(ctx, "sandbox", "pod")
	sb, err := e.h.NewSandbox(ctx, &handler.SandboxRequest{ID: "pod", Namespace: "ns", StateDir: e.state,
		Spec: &specs.Spec{Hostname: "pod-host"}, Config: &e.cfg})
	if err != nil {
		t.Fatal(err)
	}
	if err := sb.Close(ctx); err != nil {
		t.Fatal(err)
	}
	ready := false
	for _, line := range strings.Split(buf.String(), "\n") {
		if n := strings.Count(line, " sandbox="); n > 1 {
			t.Errorf("the sandbox is named %d times: %s", n, line)
		}
		ready = ready || strings.Contains(line, `msg="VM ready"`) && strings.Contains(line, " sandbox=pod ")
	}
	if !ready {
		t.Errorf("no \"VM ready\" record naming the sandbox in:\n%s", buf.String())
	}
}
