package shim

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/containerd/ttrpc"

	"github.com/huskrt/husk/internal/logging"
)

// TestCallsCarryShimLogger: a ttrpc call's context, which ttrpc makes
// from its connection's and not from the shim's, reaches the method with
// the shim's logger, so what a call logs (hook audits, module lines)
// lands in the shim's log.
func TestCallsCarryShimLogger(t *testing.T) {
	var buf bytes.Buffer
	shimCtx := logging.WithLogger(context.Background(), logging.NewText(&buf, slog.LevelInfo).With("runtime", RuntimeName))
	s := &service{ctx: shimCtx, gate: newExitGate(func() int { return 1 }, func() {})}
	method := func(ctx context.Context, _ func(any) error) (any, error) {
		logging.L(ctx).Warn("audit: hook would deny", "point", "container.update")
		return nil, nil
	}
	info := &ttrpc.UnaryServerInfo{FullMethod: "/containerd.task.v3.Task/Update"}
	if _, err := s.UnaryServerInterceptor()(context.Background(), func(any) error { return nil }, info, method); err != nil {
		t.Fatal(err)
	}
	line := buf.String()
	for _, want := range []string{"audit: hook would deny", "point=container.update", "runtime=" + RuntimeName} {
		if !strings.Contains(line, want) {
			t.Errorf("the shim's log lacks %q: %q", want, line)
		}
	}
}
