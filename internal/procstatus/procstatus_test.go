package procstatus

import (
	"os"
	"testing"
)

// TestThreads: this process has at least the threads Go started, by pid
// and as itself alike; a process that is not there is an error.
func TestThreads(t *testing.T) {
	self, err := Threads(0)
	if err != nil || self < 1 {
		t.Fatalf("Threads(0): %d, %v", self, err)
	}
	byPid, err := Threads(os.Getpid())
	if err != nil || byPid < 1 {
		t.Fatalf("Threads(own pid): %d, %v", byPid, err)
	}
	if _, err := Threads(1 << 30); err == nil {
		t.Error("a pid that does not exist: no error")
	}
}
