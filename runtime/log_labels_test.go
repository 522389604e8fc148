package runtime

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/huskrt/husk/internal/logging"
	"github.com/huskrt/husk/runtime/config"
	"github.com/huskrt/husk/runtime/handler"
)

// smartHandler is a wasm handler whose smart creates find a native
// program: the container it makes is a Linux one. It logs while it
// creates, as the real one does.
type smartHandler struct{ fakeHandler }

type smartPart struct{ createOnly }

func (smartHandler) NewSandbox(context.Context, *handler.SandboxRequest) (handler.Sandbox, error) {
	return smartPart{createOnly(func(context.Context, *handler.CreateRequest) (handler.Container, error) {
		return &fakeContainer{init: newFakeProc(1), execs: map[string]*fakeProc{}}, nil
	})}, nil
}

func (p smartPart) CreateSmart(ctx context.Context, req *handler.CreateRequest) (handler.Container, string, error) {
	logging.L(ctx).Info("looking at the program")
	c, err := p.Create(ctx, req)
	return c, "linux", err
}

// TestLogsLabelTheContainerAsItRuns: a native container created through
// the wasm handler's smart create (every container of a linux sandbox) is
// labelled handler=linux once its kind is known, never handler=wasm; and
// every record of the create and the delete names the sandbox once.
func TestLogsLabelTheContainerAsItRuns(t *testing.T) {
	var buf bytes.Buffer
	ctx := logging.WithLogger(context.Background(), slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	cfg := config.Default()
	cfg.Runtime.StateDir = t.TempDir()
	m := NewManager(fakeHandler("linux"), smartHandler{"wasm"})
	req := podReq(t, &cfg, "c", nil)
	req.Spec.Process = &specs.Process{Args: []string{"/bin/sleep"}}
	task, err := m.Create(ctx, req, &recorder{})
	if err != nil {
		t.Fatal(err)
	}
	if task.Handler != "linux" {
		t.Errorf("task.Handler = %q, want linux", task.Handler)
	}
	if !m.Deleted(ctx, task) {
		t.Error("the sandbox outlived its only container")
	}
	created := false
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if strings.Contains(line, "handler=wasm") {
			t.Errorf("a native container is labelled wasm: %s", line)
		}
		if n := strings.Count(line, " sandbox="); n != 1 {
			t.Errorf("the sandbox is named %d times: %s", n, line)
		}
		created = created || strings.Contains(line, `msg="container created"`) && strings.Contains(line, " handler=linux")
	}
	if !created {
		t.Errorf("no \"container created\" record labelled handler=linux in:\n%s", buf.String())
	}
}
