package api

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestConsoleHeader(t *testing.T) {
	var b bytes.Buffer
	if err := WriteConsoleHeader(&b, 50, 200); err != nil {
		t.Fatal(err)
	}
	if b.Len() != ConsoleHeaderSize {
		t.Fatalf("header of %d bytes, want %d", b.Len(), ConsoleHeaderSize)
	}
	rows, cols, err := ReadConsoleHeader(&b)
	if err != nil || rows != 50 || cols != 200 {
		t.Fatalf("ReadConsoleHeader = %d, %d, %v; want 50, 200", rows, cols, err)
	}
	for _, bad := range []string{"", "HSKC", "HSKF\x00\x00\x00\x50", "hskc\x00\x01\x00\x01"} {
		if _, _, err := ReadConsoleHeader(strings.NewReader(bad)); err == nil {
			t.Errorf("header %q: no error", bad)
		}
	}
	if _, _, err := ReadConsoleHeader(strings.NewReader("HSKF\x00\x00\x00\x50")); !errors.Is(err, ErrBadConsoleHeader) {
		t.Errorf("a forward header read as a console's: %v, want ErrBadConsoleHeader", err)
	}
}

func TestConsoleFrames(t *testing.T) {
	var b bytes.Buffer
	data := bytes.Repeat([]byte("0123456789"), MaxConsoleFrame/10+50) // more than one frame
	if err := WriteConsoleData(&b, data); err != nil {
		t.Fatal(err)
	}
	if err := WriteConsoleResize(&b, 24, 80); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, MaxConsoleFrame)
	var got []byte
	frames := 0
	for {
		kind, p, err := ReadConsoleFrame(&b, buf)
		if err != nil {
			t.Fatalf("frame %d: %v", frames, err)
		}
		frames++
		if kind == ConsoleResize {
			if r, c := ConsoleSize(p); r != 24 || c != 80 {
				t.Errorf("resize to %dx%d, want 24x80", r, c)
			}
			break
		}
		got = append(got, p...)
	}
	if !bytes.Equal(got, data) || frames != 3 {
		t.Errorf("%d bytes in %d frames, want %d in 3", len(got), frames, len(data))
	}
	if _, _, err := ReadConsoleFrame(&b, buf); err != io.EOF {
		t.Errorf("at the end: %v, want io.EOF", err)
	}
	for name, bad := range map[string][]byte{
		"unknown kind":   {'X', 0, 1, 'a'},
		"empty data":     {ConsoleData, 0, 0},
		"oversized data": {ConsoleData, 0xff, 0xff},
		"short resize":   {ConsoleResize, 0, 2, 0, 1},
		"cut header":     {ConsoleData, 0},
		"cut payload":    {ConsoleData, 0, 9, 'a'},
	} {
		if _, _, err := ReadConsoleFrame(bytes.NewReader(bad), buf); !errors.Is(err, ErrBadConsoleFrame) {
			t.Errorf("%s: %v, want ErrBadConsoleFrame", name, err)
		}
	}
}

func TestConsoleAnswerError(t *testing.T) {
	if err := ConsoleAnswerError(ConsoleOpen); err != nil {
		t.Errorf("ConsoleOpen: %v", err)
	}
	for _, a := range []byte{ConsoleOff, ConsoleBusy, ConsoleFailed, ConsoleUnreachable, 7, 0xff} {
		if ConsoleAnswerError(a) == nil {
			t.Errorf("answer %d: no error", a)
		}
	}
}

// FuzzConsoleFrame: whatever the bytes, ReadConsoleFrame returns only a
// data frame of 1 to MaxConsoleFrame bytes or a 4-byte resize, or an
// error, and consumes no more than it was given; and what
// WriteConsoleData writes reads back the same.
func FuzzConsoleFrame(f *testing.F) {
	f.Add([]byte{ConsoleData, 0, 1, 'a'}, []byte("hello"))
	f.Add([]byte{ConsoleResize, 0, 4, 0, 24, 0, 80}, []byte{})
	f.Add([]byte{ConsoleData, 0xff, 0xff}, bytes.Repeat([]byte{'x'}, MaxConsoleFrame+1))
	f.Add([]byte{'X', 0, 0}, []byte{0})
	f.Fuzz(func(t *testing.T, raw, data []byte) {
		buf := make([]byte, MaxConsoleFrame)
		r := bytes.NewReader(raw)
		for i := 0; i < len(raw); i++ {
			kind, p, err := ReadConsoleFrame(r, buf)
			if err != nil {
				break
			}
			switch {
			case kind == ConsoleData && len(p) >= 1 && len(p) <= MaxConsoleFrame:
			case kind == ConsoleResize && len(p) == 4:
			default:
				t.Fatalf("frame of kind %#x with %d bytes", kind, len(p))
			}
		}
		var b bytes.Buffer
		if err := WriteConsoleData(&b, data); err != nil {
			t.Fatal(err)
		}
		var got []byte
		for {
			kind, p, err := ReadConsoleFrame(&b, buf)
			if err == io.EOF {
				break
			}
			if err != nil || kind != ConsoleData {
				t.Fatalf("reading back: kind %#x, %v", kind, err)
			}
			got = append(got, p...)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("read back %d bytes, wrote %d", len(got), len(data))
		}
	})
}
