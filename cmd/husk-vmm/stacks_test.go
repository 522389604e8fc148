package main

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// TestThreadStacksUnder2MiB: the process's new threads (this test binary
// links stacks.go's constructor too) have 256 KiB stacks, too small for a
// transparent huge page, not glibc's 8 MiB (without the constructor this
// finds one mapping of 256 KiB for 4 new threads, and fails).
func TestThreadStacksUnder2MiB(t *testing.T) {
	if threadStackKiB == 0 {
		t.Skip("built without cgo: Go allocates its threads' stacks itself")
	}
	// New threads: goroutines that hold theirs.
	const n = 4
	var ready, release sync.WaitGroup
	ready.Add(n)
	release.Add(1)
	for range n {
		go func() {
			runtime.LockOSThread()
			ready.Done()
			release.Wait()
		}()
	}
	ready.Wait()
	defer release.Done()
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	sizes := map[uint64]int{}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) != 5 || f[1] != "rw-p" { // anonymous: no path
			continue
		}
		lo, hi, ok := strings.Cut(f[0], "-")
		if !ok {
			continue
		}
		a, _ := strconv.ParseUint(lo, 16, 64)
		z, _ := strconv.ParseUint(hi, 16, 64)
		sizes[(z-a)>>10]++
	}
	if sizes[threadStackKiB] < n {
		t.Errorf("%d anonymous mappings of %d KiB, want one per thread, at least %d: %v", sizes[threadStackKiB], threadStackKiB, n, sizes)
	}
}
