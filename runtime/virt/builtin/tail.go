package builtin

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
)

// Bounds on what the parent keeps of the VMM's stderr: the VMM is not
// trusted to be brief.
const (
	tailLines   = 20
	tailLineLen = 256
)

// tail is an io.Writer that keeps the last lines written to it, each cut
// to tailLineLen bytes, and passes each line to log at debug level.
type tail struct {
	log *slog.Logger

	mu      sync.Mutex
	lines   []string // guarded by mu; at most tailLines
	partial []byte   // guarded by mu; the unfinished line, at most tailLineLen
	cut     bool     // guarded by mu; partial lost bytes
}

func (t *tail) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(b)
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		chunk := b
		if i >= 0 {
			chunk = b[:i]
		}
		if room := tailLineLen - len(t.partial); len(chunk) > room {
			t.partial = append(t.partial, chunk[:room]...)
			t.cut = true
		} else {
			t.partial = append(t.partial, chunk...)
		}
		if i < 0 {
			break
		}
		t.endLineLocked()
		b = b[i+1:]
	}
	return n, nil
}

// endLineLocked moves the unfinished line to the kept lines.
//
// Preconditions: t.mu is held.
func (t *tail) endLineLocked() {
	line := cleanText(string(t.partial))
	if t.cut {
		line += "…"
	}
	t.partial, t.cut = t.partial[:0], false
	if t.log != nil {
		t.log.Debug("vmm", "line", line)
	}
	if len(t.lines) == tailLines {
		copy(t.lines, t.lines[1:])
		t.lines = t.lines[:tailLines-1]
	}
	t.lines = append(t.lines, line)
}

// String returns the kept lines, the unfinished one included.
func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := t.lines
	if len(t.partial) > 0 {
		lines = append(lines[:len(lines):len(lines)], cleanText(string(t.partial)))
	}
	return strings.Join(lines, "\n")
}
