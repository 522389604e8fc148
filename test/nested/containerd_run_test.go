package nested

import (
	"context"
	"io"
	"os"
	"syscall"
	"testing"
	"time"
)

// TestFrozenGuestIsKilled: a "QEMU" that neither prints nor runs is ended
// as frozen, long before its own end; one that prints now and then is not.
func TestFrozenGuestIsKilled(t *testing.T) {
	defer func(after, tick time.Duration) { frozenAfter, frozenTick = after, tick }(frozenAfter, frozenTick)
	frozenAfter, frozenTick = 2*time.Second, 250*time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	start := time.Now()
	frozen, err := runQEMUWatched(ctx, "sleep", []string{"60"}, io.Discard)
	if !frozen || err == nil {
		t.Errorf("a silent idle process: frozen %v, err %v", frozen, err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("ended as frozen after %v", d)
	}

	frozen, err = runQEMUWatched(ctx, "sh", []string{"-c", "for i in 1 2 3 4 5; do echo $i; sleep 1; done"}, io.Discard)
	if frozen || err != nil {
		t.Errorf("a process that prints: frozen %v, err %v", frozen, err)
	}
}

// TestCPUTime: cpuTime agrees with getrusage(2) on this process's own
// CPU time, to /proc's 10 ms ticks.
func TestCPUTime(t *testing.T) {
	rusage := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			t.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	for start := rusage(); rusage()-start < 300*time.Millisecond; {
	}
	got, want := cpuTime(os.Getpid()), rusage()
	if got < want-50*time.Millisecond || got > want+50*time.Millisecond {
		t.Errorf("cpuTime %v, getrusage %v", got, want)
	}
}
