package wasmhost_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/huskrt/husk/wasmhost"
)

// controlChars are what a hostile module puts in text that reaches logs
// and terminals: a newline to forge a log line, ESC to start a terminal
// escape sequence, C1 CSI, DEL, a bidirectional override and a line
// separator.
var controlChars = []string{"\n", "\r", "\x1b", "\u009b", "\x7f", "\u202e", "\u2028"}

func hasControl(s string) bool {
	for _, c := range controlChars {
		if strings.Contains(s, c) {
			return true
		}
	}
	return false
}

func TestEscapeText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain text, ünïcödé and emoji 🦀", "plain text, ünïcödé and emoji 🦀"},
		{"two\nlines", `two\nlines`},
		{"\x1b[2J\x1b]0;title\x07", `\x1b[2J\x1b]0;title\a`},
		{"csi \u009b31m del \x7f", `csi \u009b31m del \x7f`},
		{"bidi \u202egnp.exe sep \u2028", `bidi \u202egnp.exe sep \u2028`},
		{"bad \xff utf-8", "bad \uFFFD utf-8"},
		{"tab\there", `tab\there`},
	}
	for _, tt := range tests {
		if got := wasmhost.EscapeText(tt.in); got != tt.want {
			t.Errorf("EscapeText(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestModuleTextIsEscaped: what a module writes through husk.log, and the
// names it imports, reach the log and the user's error as one line of
// printable text: control characters are escaped, not passed on.
func TestModuleTextIsEscaped(t *testing.T) {
	var (
		mu    sync.Mutex
		lines []string
	)
	h := newHost(t, wasmhost.Config{Log: func(_ context.Context, _ string, _ slog.Level, msg string) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, msg)
	}})
	// decision.wat logs the point name it is given.
	m := mustLoad(t, h, "decision", wasmhost.ModuleConfig{Config: []byte(`{"allow":true}`)})
	forged := "container.create\ntime=2026-01-01 level=ERROR msg=\"forged\" \x1b[2J\u009b31m\u202e\x7f"
	if _, err := m.Decide(context.Background(), forged, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(lines) != 1 || hasControl(lines[0]) || !strings.Contains(lines[0], `container.create\ntime=`) || !strings.Contains(lines[0], `\x1b[2J`) {
		t.Errorf("logged %q, want one line with the control characters escaped", lines)
	}
	mu.Unlock()

	_, err := load(t, h, "ctlimport", wasmhost.ModuleConfig{})
	if !errors.Is(err, wasmhost.ErrABI) || hasControl(err.Error()) || !strings.Contains(err.Error(), `imports env\x1b[2J.now\nlevel=ERROR msg=forged\u202e, which husk does not provide`) {
		t.Errorf("Load: %q, want the import's names escaped", err)
	}
}
