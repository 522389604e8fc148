package stdio

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/containerd/errdefs"
)

// pipeStreams holds named connections, each to be taken once.
type pipeStreams struct {
	mu    sync.Mutex
	conns map[string]io.ReadWriteCloser
}

func (s *pipeStreams) Take(_ context.Context, name string) (io.ReadWriteCloser, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.conns[name]
	if !ok {
		return nil, errdefs.ErrNotFound
	}
	delete(s.conns, name)
	return c, nil
}

// TestStreams: stream:<name> stdio is copied to and from the connections
// the context's Streams hand over, and each output connection is closed at
// the process side's EOF.
func TestStreams(t *testing.T) {
	inHost, inProc := net.Pipe()
	outHost, outProc := net.Pipe()
	s := &pipeStreams{conns: map[string]io.ReadWriteCloser{"1": inProc, "2": outProc}}
	ctx := WithStreams(context.Background(), s)
	x, err := NewPipes(ctx, Paths{Stdin: StreamName("1"), Stdout: StreamName("2")})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close(time.Second)

	// The "process": echo stdin to stdout, then end.
	go func() {
		_, _ = io.Copy(x.Stdout, x.Stdin)
		x.CloseChildEnds()
	}()
	go func() {
		_, _ = inHost.Write([]byte("hello over a stream"))
		_ = inHost.Close()
	}()
	got, err := io.ReadAll(outHost)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "hello over a stream" {
		t.Fatalf("stdout %q", got)
	}
	if err := x.WaitOutput(time.Second); err != nil {
		t.Fatal(err)
	}
}

// TestStreamsMissing: a stream name without Streams in the context, or
// one Streams does not have, is an error.
func TestStreamsMissing(t *testing.T) {
	if _, err := NewPipes(context.Background(), Paths{Stdout: StreamName("1")}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("stream without Streams: %v, want invalid argument", err)
	}
	ctx := WithStreams(context.Background(), &pipeStreams{})
	if _, err := NewPipes(ctx, Paths{Stdin: StreamName("9")}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("unknown stream: %v, want not found", err)
	}
}
