package api

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

const (
	// AgentPort is the guest vsock port the Agent ttrpc service listens on.
	AgentPort = 1024
	// StreamPort is the guest vsock port stdio streams are attached on.
	StreamPort = 1025
	// ProtocolVersion is the version of the Agent protocol this package
	// describes; CheckResponse.protocol_version carries the agent's.
	ProtocolVersion = 1
)

// StreamHeaderSize is the length of the header a stream connection starts
// with.
const StreamHeaderSize = 16

// streamMagic opens every stream header; the version is part of it.
const streamMagic = "HSK1"

// ErrBadStreamHeader is what ReadStreamHeader returns (wrapped) for a header
// that is not one.
var ErrBadStreamHeader = errors.New("bad stream header")

// WriteStreamHeader writes the header that attaches the connection w to
// stream id. id must not be 0.
func WriteStreamHeader(w io.Writer, id uint64) error {
	if id == 0 {
		return fmt.Errorf("%w: stream id 0", ErrBadStreamHeader)
	}
	var b [StreamHeaderSize]byte
	copy(b[:4], streamMagic)
	binary.BigEndian.PutUint64(b[8:], id)
	_, err := w.Write(b[:])
	return err
}

// ReadStreamHeader reads a stream header from r and returns its stream id.
// It reads exactly StreamHeaderSize bytes, or fails: a short read, a wrong
// magic, reserved bytes that are not zero and id 0 are errors.
func ReadStreamHeader(r io.Reader) (uint64, error) {
	var b [StreamHeaderSize]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return 0, fmt.Errorf("reading stream header: %w", err)
	}
	if string(b[:4]) != streamMagic {
		return 0, fmt.Errorf("%w: magic %q, want %q", ErrBadStreamHeader, b[:4], streamMagic)
	}
	if b[4]|b[5]|b[6]|b[7] != 0 {
		return 0, fmt.Errorf("%w: reserved bytes % x are not zero", ErrBadStreamHeader, b[4:8])
	}
	id := binary.BigEndian.Uint64(b[8:])
	if id == 0 {
		return 0, fmt.Errorf("%w: stream id 0", ErrBadStreamHeader)
	}
	return id, nil
}

// NewStreamID returns a random, non-zero stream id. Random so that a
// stream of one process is never taken for another's, even across an
// agent restart.
func NewStreamID() uint64 {
	var b [8]byte
	for {
		rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
		if id := binary.BigEndian.Uint64(b[:]); id != 0 {
			return id
		}
	}
}
