package main

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// TestNoGoroutineRunsOnTheMainThread: with main's goroutine locked to the
// main thread (init), no other goroutine ever runs there, so none that ends
// locked in a container's namespace (libcontainer's mount-source thread)
// can leave the main thread, which /proc/self shows, behind in it.
func TestNoGoroutineRunsOnTheMainThread(t *testing.T) {
	pid := unix.Getpid()
	var hits atomic.Int32
	for round := 0; round < 20; round++ {
		var wg sync.WaitGroup
		for i := 0; i < 200; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				if unix.Gettid() == pid {
					hits.Add(1)
				}
			}()
		}
		wg.Wait()
	}
	if n := hits.Load(); n > 0 {
		t.Fatalf("%d goroutines ran on the main thread (pid %d): main's goroutine is not locked to it", n, pid)
	}
}
