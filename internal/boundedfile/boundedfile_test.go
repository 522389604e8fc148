package boundedfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "small")
	if err := os.WriteFile(small, []byte("12345"), 0o644); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, path string
		limit      int64
		want       error
		text       string
	}{
		{"within the limit", small, 5, nil, ""},
		{"over the limit", small, 4, ErrTooLarge, "small: too large: 5 bytes, over 4 bytes, husk's limit"},
		{"a FIFO", fifo, 5, ErrNotRegular, "(a FIFO)"},
		{"a directory", dir, 5, ErrNotRegular, "(a directory)"},
		{"a device", "/dev/zero", 5, ErrNotRegular, "(a device)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			b, err := Read("read x", tt.path, tt.limit)
			if time.Since(start) > 5*time.Second {
				t.Errorf("took %v", time.Since(start))
			}
			if tt.want == nil {
				if err != nil || string(b) != "12345" {
					t.Fatalf("Read = %q, %v", b, err)
				}
				return
			}
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.text) {
				t.Fatalf("Read: %v, want %v with %q", err, tt.want, tt.text)
			}
		})
	}
}

func TestReadAllBoundsAStream(t *testing.T) {
	if b, err := ReadAll("read", "-", strings.NewReader("abcd"), 4); err != nil || string(b) != "abcd" {
		t.Fatalf("ReadAll at the limit = %q, %v", b, err)
	}
	_, err := ReadAll("read", "-", strings.NewReader("abcde"), 4)
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "read -: too large: over 4 bytes, husk's limit") {
		t.Fatalf("ReadAll over the limit: %v", err)
	}
}
