package virt

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/fifo"

	"github.com/huskrt/husk/agent/api"
	"github.com/huskrt/husk/agent/client"
	"github.com/huskrt/husk/runtime/handler"
	"github.com/huskrt/husk/runtime/stdio"
)

// streams are a process's stdio on the host: each of containerd's FIFOs
// copied to or from a vsock connection of its own to the agent.
type streams struct {
	ids     client.Stdio
	copies  sync.WaitGroup // the output copiers
	mu      sync.Mutex
	closers []io.Closer // guarded by mu
}

// openStreams attaches a stream to the agent for each stdio path and
// starts copying; the agent takes them when the process is created.
func openStreams(ctx context.Context, vm VM, s handler.Stdio) (_ *streams, retErr error) {
	st := &streams{ids: client.Stdio{Terminal: s.Terminal}}
	defer func() {
		if retErr != nil {
			st.close()
		}
	}()
	attach := func() (net.Conn, uint64, error) {
		c, err := vm.Dial(ctx, api.StreamPort)
		if err != nil {
			return nil, 0, fmt.Errorf("attaching a stdio stream: %w", err)
		}
		id := api.NewStreamID()
		_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if err := api.WriteStreamHeader(c, id); err != nil {
			c.Close()
			return nil, 0, fmt.Errorf("attaching a stdio stream: %w", err)
		}
		_ = c.SetWriteDeadline(time.Time{})
		st.add(c)
		return c, id, nil
	}
	for _, out := range []struct {
		path string
		id   *uint64
	}{{s.Stdout, &st.ids.Stdout}, {s.Stderr, &st.ids.Stderr}} {
		if out.path == "" || (s.Terminal && out.id == &st.ids.Stderr) {
			continue
		}
		dst, err := stdio.OpenDest(ctx, out.path)
		if err != nil {
			return nil, err
		}
		st.add(dst)
		c, id, err := attach()
		if err != nil {
			return nil, err
		}
		*out.id = id
		st.copies.Add(1)
		go func() {
			defer st.copies.Done()
			_, _ = io.Copy(dst, c)
			dst.Close()
		}()
	}
	if s.Stdin != "" {
		src, err := fifo.OpenFifo(ctx, s.Stdin, syscall.O_RDONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			return nil, fmt.Errorf("opening stdin fifo %s: %w", s.Stdin, err)
		}
		st.add(src)
		c, id, err := attach()
		if err != nil {
			return nil, err
		}
		st.ids.Stdin = id
		go func() {
			// The client's EOF is the process's: the agent sees the
			// connection end.
			_, _ = io.Copy(c, src)
			c.Close()
		}()
	}
	return st, nil
}

func (st *streams) add(c io.Closer) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.closers = append(st.closers, c)
}

// wait waits up to grace for the output to be copied out.
func (st *streams) wait(grace time.Duration) bool {
	done := make(chan struct{})
	go func() { st.copies.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(grace):
		return false
	}
}

// close releases every connection and FIFO.
func (st *streams) close() {
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, c := range st.closers {
		_ = c.Close()
	}
	st.closers = nil
}
