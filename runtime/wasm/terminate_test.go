package wasm

import (
	"context"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/huskrt/husk/runtime/handler"
)

// stuckRunner is a runner that ignores every signal but SIGKILL (as one
// whose signal goroutine waits behind a stop-the-world), or, with obeys,
// ends at once with 128+n as the runner does.
type stuckRunner struct {
	handler.Process // nil: only the methods below are used
	obeys           bool

	mu   sync.Mutex
	sent []syscall.Signal
	exit handler.Exit
	done chan struct{}
	once sync.Once
}

func (r *stuckRunner) Signal(_ context.Context, sig syscall.Signal, _ bool) error {
	r.mu.Lock()
	r.sent = append(r.sent, sig)
	r.mu.Unlock()
	if sig == syscall.SIGKILL || r.obeys {
		r.once.Do(func() {
			r.mu.Lock()
			r.exit = handler.Exit{Status: 128 + int(sig)}
			r.mu.Unlock()
			close(r.done)
		})
	}
	return nil
}
func (r *stuckRunner) Done() <-chan struct{} { return r.done }
func (r *stuckRunner) Exit() handler.Exit {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.exit
}

func TestTerminatingSignalIsFinished(t *testing.T) {
	for _, tc := range []struct {
		name  string
		obeys bool
		sig   syscall.Signal
		want  int
		sent  []syscall.Signal
	}{
		{"runner ends itself", true, syscall.SIGTERM, 143, []syscall.Signal{syscall.SIGTERM}},
		{"runner stuck: the shim kills it, reported as SIGTERM", false, syscall.SIGTERM, 143, []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL}},
		{"SIGINT likewise", false, syscall.SIGINT, 130, []syscall.Signal{syscall.SIGINT, syscall.SIGKILL}},
		{"SIGKILL is SIGKILL", false, syscall.SIGKILL, 137, []syscall.Signal{syscall.SIGKILL}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &stuckRunner{obeys: tc.obeys, done: make(chan struct{})}
			p := &runnerInit{Process: r, grace: 50 * time.Millisecond}
			if err := p.Signal(context.Background(), tc.sig, false); err != nil {
				t.Fatal(err)
			}
			select {
			case <-p.Done():
			case <-time.After(5 * time.Second):
				t.Fatal("the runner never ended")
			}
			time.Sleep(100 * time.Millisecond) // past the grace: no SIGKILL after an exit
			if got := p.Exit().Status; got != tc.want {
				t.Errorf("exit %d, want %d", got, tc.want)
			}
			r.mu.Lock()
			defer r.mu.Unlock()
			if len(r.sent) != len(tc.sent) {
				t.Fatalf("signals sent %v, want %v", r.sent, tc.sent)
			}
			for i := range r.sent {
				if r.sent[i] != tc.sent[i] {
					t.Errorf("signals sent %v, want %v", r.sent, tc.sent)
				}
			}
		})
	}
	// A signal that does not end the runner is only sent.
	r := &stuckRunner{done: make(chan struct{})}
	p := &runnerInit{Process: r, grace: 20 * time.Millisecond}
	if err := p.Signal(context.Background(), syscall.SIGWINCH, false); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.sent) != 1 {
		t.Errorf("SIGWINCH: sent %v, want it alone", r.sent)
	}
}
