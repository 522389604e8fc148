// Package procstatus reads fields of a process's /proc/<pid>/status, for
// tests that pin what a process holds (its threads).
package procstatus

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// Threads is the thread count of process pid ("Threads:" in its status);
// pid 0 is the calling process.
func Threads(pid int) (int, error) {
	path := "/proc/self/status"
	if pid != 0 {
		path = fmt.Sprintf("/proc/%d/status", pid)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Threads:"); ok {
			return strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return 0, errors.New("no Threads: in " + path)
}

// MustThreads is Threads for a test, which it fails on an error.
func MustThreads(tb testing.TB, pid int) int {
	tb.Helper()
	n, err := Threads(pid)
	if err != nil {
		tb.Fatal(err)
	}
	return n
}
