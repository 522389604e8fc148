package serial

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// PortHeaderSize is the length of the header each stream of a session
// begins with: the magic, then the guest port it is for (big-endian).
const PortHeaderSize = 8

const portMagic = "HSKP"

// The guest's one-byte answer to a port header.
const (
	portAccepted byte = 0
	portRefused  byte = 1
)

// ErrBadPortHeader is what ReadPortHeader returns (wrapped) for a header
// that is not one.
var ErrBadPortHeader = errors.New("bad port header")

// WritePortHeader writes the header that opens a stream to port.
func WritePortHeader(w io.Writer, port uint32) error {
	var b [PortHeaderSize]byte
	copy(b[:], portMagic)
	binary.BigEndian.PutUint32(b[4:], port)
	_, err := w.Write(b[:])
	return err
}

// ReadPortHeader reads a port header from r and returns its port. It reads
// exactly PortHeaderSize bytes, or fails.
func ReadPortHeader(r io.Reader) (uint32, error) {
	var b [PortHeaderSize]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return 0, fmt.Errorf("reading a port header: %w", err)
	}
	if string(b[:4]) != portMagic {
		return 0, fmt.Errorf("%w: magic %q, want %q", ErrBadPortHeader, b[:4], portMagic)
	}
	return binary.BigEndian.Uint32(b[4:]), nil
}

// readPortAnswer reads the guest's answer to a port header: nil for
// accepted, errRefused for refused, ErrBadPortHeader for anything else.
func readPortAnswer(r io.Reader) error {
	var b [1]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return fmt.Errorf("reading the guest's answer to a port header: %w", err)
	}
	switch b[0] {
	case portAccepted:
		return nil
	case portRefused:
		return errRefused
	default:
		return fmt.Errorf("%w: answer %#x", ErrBadPortHeader, b[0])
	}
}

var errRefused = errors.New("refused")
