package vmproc

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"unicode"
)

// Bounds on what the parent keeps of a VM process's stderr: the process
// is not trusted to be brief.
const (
	TailLines   = 20
	TailLineLen = 256
)

// Tail is an io.Writer that keeps the last lines written to it, each cut
// to TailLineLen bytes, unprintable characters replaced with '?', and
// passes each line to Log (if set) at debug level.
type Tail struct {
	Log *slog.Logger

	mu      sync.Mutex
	lines   []string // guarded by mu; at most TailLines
	partial []byte   // guarded by mu; the unfinished line, at most TailLineLen
	cut     bool     // guarded by mu; partial lost bytes
}

func (t *Tail) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(b)
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		chunk := b
		if i >= 0 {
			chunk = b[:i]
		}
		if room := TailLineLen - len(t.partial); len(chunk) > room {
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
func (t *Tail) endLineLocked() {
	line := cleanText(string(t.partial))
	if t.cut {
		line += "…"
	}
	t.partial, t.cut = t.partial[:0], false
	if t.Log != nil {
		t.Log.Debug("vmm", "line", line)
	}
	if len(t.lines) == TailLines {
		copy(t.lines, t.lines[1:])
		t.lines = t.lines[:TailLines-1]
	}
	t.lines = append(t.lines, line)
}

// String returns the kept lines, the unfinished one included.
func (t *Tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := t.lines
	if len(t.partial) > 0 {
		lines = append(lines[:len(lines):len(lines)], cleanText(string(t.partial)))
	}
	return strings.Join(lines, "\n")
}

// cleanText replaces what is not printable with '?'.
func cleanText(s string) string {
	return strings.Map(func(r rune) rune {
		if r == unicode.ReplacementChar || !unicode.IsPrint(r) {
			return '?'
		}
		return r
	}, s)
}
