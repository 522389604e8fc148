package virt

import (
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

// consoleFile is where a VM's serial console is kept, in the VM's
// directory: the guest kernel's messages and the agent's log, for people
// finding out why a pod failed (docs/troubleshooting.md).
const consoleFile = "console.log"

// maxConsole bounds what is kept of a console: the guest writes what it
// likes, so the file is rotated at half of it (console.log.1 holds the
// half before) and a node keeps at most this much per pod.
const maxConsole = 1 << 20

// consoleLog is a VM's console writer. Each write opens, appends to and
// closes the file, so nothing stays open once the VM has ended and its
// directory went; and it never fails: a failing console writer would stop
// the copy from the VM's console pipe, and a guest writing to a full
// serial port blocks.
type consoleLog struct {
	path string

	mu   sync.Mutex
	size int64 // bytes in the current file; -1 before the first write; guarded by mu
}

func newConsoleLog(dir string) *consoleLog {
	return &consoleLog{path: filepath.Join(dir, consoleFile), size: -1}
}

func (c *consoleLog) Write(p []byte) (int, error) {
	n := len(p)
	if len(p) > maxConsole/2 {
		p = p[len(p)-maxConsole/2:] // the end of a flood
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.size < 0 {
		c.size = 0
		if st, err := os.Stat(c.path); err == nil {
			c.size = st.Size()
		}
	}
	if c.size+int64(len(p)) > maxConsole/2 {
		_ = os.Rename(c.path, c.path+".1")
		c.size = 0
	}
	f, err := os.OpenFile(c.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return n, nil
	}
	w, _ := f.Write(p)
	c.size += int64(w)
	_ = f.Close()
	return n, nil
}
