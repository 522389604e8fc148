package api

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// DebugConsolePort is the guest port debug-console connections arrive on,
// one per console. The agent serves it only when the VM was booted with
// DebugConsoleParam on its kernel command line ([virt] debug_console);
// otherwise it answers ConsoleOff and closes.
//
// The host writes the 8-byte header WriteConsoleHeader makes ("HSKC", the
// terminal's rows and columns as big-endian uint16s, 0 for unknown); the
// agent answers one byte: ConsoleOpen, or a refusal (ConsoleOff,
// ConsoleBusy, ConsoleFailed) after which the connection is closed. After
// ConsoleOpen the guest sends the terminal's output, raw, and the host
// sends frames (WriteConsoleData, WriteConsoleResize): a kind byte, a
// big-endian uint16 length, and that many bytes. The agent closes the
// connection when the shell has exited; the host ends the shell by
// closing it.
const DebugConsolePort = 1027

// DebugConsoleParam is the guest kernel parameter that lets the agent
// serve DebugConsolePort. Only husk sets it ([virt] debug_console): the
// configuration and hooks may not (runtime/config reserves it).
const DebugConsoleParam = "husk.debug_console=1"

// ConsoleHeaderSize is the length of a console connection's header.
const ConsoleHeaderSize = 8

// The agent's answers to a console header.
const (
	ConsoleOpen   byte = 0 // a shell runs on a terminal; the stream follows
	ConsoleOff    byte = 1 // the VM was booted without the debug console
	ConsoleBusy   byte = 2 // as many consoles as the agent allows are open
	ConsoleFailed byte = 3 // the agent could not start a shell
	// ConsoleUnreachable is the shim's own answer: it could not reach
	// the agent's console port.
	ConsoleUnreachable byte = 4
)

// Kinds of the host's frames.
const (
	ConsoleData   byte = 'D' // bytes typed into the terminal
	ConsoleResize byte = 'W' // the terminal's new size: rows, cols (uint16 each)
)

// MaxConsoleFrame bounds a frame's payload; a longer one breaks the
// connection.
const MaxConsoleFrame = 4096

const consoleMagic = "HSKC"

// ErrBadConsoleHeader is what ReadConsoleHeader returns (wrapped) for a
// header that is not one; ErrBadConsoleFrame what ReadConsoleFrame returns
// for a frame that is not one.
var (
	ErrBadConsoleHeader = errors.New("bad console header")
	ErrBadConsoleFrame  = errors.New("bad console frame")
)

// WriteConsoleHeader writes the header that asks for a console of rows by
// cols (0: unknown).
func WriteConsoleHeader(w io.Writer, rows, cols uint16) error {
	var b [ConsoleHeaderSize]byte
	copy(b[:4], consoleMagic)
	binary.BigEndian.PutUint16(b[4:], rows)
	binary.BigEndian.PutUint16(b[6:], cols)
	_, err := w.Write(b[:])
	return err
}

// ReadConsoleHeader reads a console header from r: exactly
// ConsoleHeaderSize bytes with the right magic, or an error.
func ReadConsoleHeader(r io.Reader) (rows, cols uint16, err error) {
	var b [ConsoleHeaderSize]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return 0, 0, fmt.Errorf("reading console header: %w", err)
	}
	if string(b[:4]) != consoleMagic {
		return 0, 0, fmt.Errorf("%w: magic %q, want %q", ErrBadConsoleHeader, b[:4], consoleMagic)
	}
	return binary.BigEndian.Uint16(b[4:]), binary.BigEndian.Uint16(b[6:]), nil
}

// ConsoleAnswerError is nil for ConsoleOpen and says why for every other
// answer, including one that is none of the agent's.
func ConsoleAnswerError(a byte) error {
	switch a {
	case ConsoleOpen:
		return nil
	case ConsoleOff:
		return errors.New("the agent refused: the VM was booted with the debug console off ([virt] debug_console = false)")
	case ConsoleBusy:
		return errors.New("the agent refused: too many debug consoles are open")
	case ConsoleFailed:
		return errors.New("the agent could not start a shell (the guest's log, console.log, says why)")
	case ConsoleUnreachable:
		return errors.New("the shim could not reach the agent's console port (the VM ended, or its guest image predates the debug console: make guest); the shim's log says why")
	}
	return fmt.Errorf("the agent answered %#x, not a console answer", a)
}

// WriteConsoleData writes p as data frames of at most MaxConsoleFrame
// bytes each.
func WriteConsoleData(w io.Writer, p []byte) error {
	var buf [3 + MaxConsoleFrame]byte
	for len(p) > 0 {
		n := copy(buf[3:], p)
		buf[0] = ConsoleData
		binary.BigEndian.PutUint16(buf[1:3], uint16(n))
		if _, err := w.Write(buf[:3+n]); err != nil {
			return err
		}
		p = p[n:]
	}
	return nil
}

// WriteConsoleResize writes a resize frame.
func WriteConsoleResize(w io.Writer, rows, cols uint16) error {
	var b [7]byte
	b[0] = ConsoleResize
	binary.BigEndian.PutUint16(b[1:], 4)
	binary.BigEndian.PutUint16(b[3:], rows)
	binary.BigEndian.PutUint16(b[5:], cols)
	_, err := w.Write(b[:])
	return err
}

// ReadConsoleFrame reads one frame into buf (MaxConsoleFrame bytes at
// least) and returns its kind and payload, a slice of buf. An unknown
// kind, an empty or oversized data frame and a resize frame that is not 4
// bytes are errors; a stream that ends between frames is io.EOF.
func ReadConsoleFrame(r io.Reader, buf []byte) (byte, []byte, error) {
	var h [3]byte
	if _, err := io.ReadFull(r, h[:1]); err != nil {
		return 0, nil, err
	}
	if _, err := io.ReadFull(r, h[1:]); err != nil {
		return 0, nil, fmt.Errorf("%w: a header cut short: %w", ErrBadConsoleFrame, err)
	}
	n := int(binary.BigEndian.Uint16(h[1:]))
	switch h[0] {
	case ConsoleData:
		if n == 0 || n > MaxConsoleFrame || n > len(buf) {
			return 0, nil, fmt.Errorf("%w: data of %d bytes, want 1 to %d", ErrBadConsoleFrame, n, MaxConsoleFrame)
		}
	case ConsoleResize:
		if n != 4 {
			return 0, nil, fmt.Errorf("%w: resize of %d bytes, want 4", ErrBadConsoleFrame, n)
		}
	default:
		return 0, nil, fmt.Errorf("%w: kind %#x", ErrBadConsoleFrame, h[0])
	}
	if _, err := io.ReadFull(r, buf[:n]); err != nil {
		return 0, nil, fmt.Errorf("%w: a payload cut short: %w", ErrBadConsoleFrame, err)
	}
	return h[0], buf[:n], nil
}

// ConsoleSize is a resize frame's payload: rows, cols.
func ConsoleSize(p []byte) (rows, cols uint16) {
	return binary.BigEndian.Uint16(p), binary.BigEndian.Uint16(p[2:])
}
