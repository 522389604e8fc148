// Package testclient gives tier-2 test suites what they share for driving a
// bench's containerd with its Go client (as the CRI and nerdctl do): one
// client per bench, and a buffer task output can be copied into from
// containerd's copier goroutines.
package testclient

import (
	"bytes"
	"sync"

	containerd "github.com/containerd/containerd/v2/client"

	"github.com/huskrt/husk/test/devenv"
)

// Clients makes one client per bench, on first use.
type Clients struct {
	once   sync.Once
	client *containerd.Client
	err    error
}

// Get returns the client of bench b (the same b at every call).
func (c *Clients) Get(b *devenv.Containerd) (*containerd.Client, error) {
	c.once.Do(func() {
		c.client, c.err = containerd.New(b.Address(), containerd.WithDefaultNamespace(b.Namespace))
	})
	return c.client, c.err
}

// SyncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
