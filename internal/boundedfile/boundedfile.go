// Package boundedfile reads a file that a user or an operator names
// without trusting what it names: a FIFO would hold the reader in open(2)
// until a writer comes, a device may never end, and a regular file may be
// larger than the reader can afford. Hook modules (wasmhost) and the
// inputs of huskctl's policy test are read through it.
package boundedfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// ErrNotRegular is the cause of a path that names something other than a
// regular file.
var ErrNotRegular = errors.New("not a regular file")

// ErrTooLarge is the cause of a file or stream over its limit.
var ErrTooLarge = errors.New("too large")

// Read reads the regular file at path, at most limit bytes; op names the
// reading in its errors (fs.PathError's Op). It opens without blocking and
// checks on the open descriptor that it is a regular file before reading,
// so that a FIFO or a device fails at once.
func Read(op, path string, limit int64) ([]byte, error) {
	// O_NONBLOCK: opening a FIFO for reading returns at once rather than
	// waiting for a writer; it changes nothing for a regular file.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, &fs.PathError{Op: op, Path: path, Err: fmt.Errorf("%w (%s)", ErrNotRegular, Kind(info.Mode()))}
	}
	if info.Size() > limit {
		return nil, &fs.PathError{Op: op, Path: path, Err: fmt.Errorf("%w: %d bytes, over %d bytes, husk's limit", ErrTooLarge, info.Size(), limit)}
	}
	return ReadAll(op, path, f, limit)
}

// ReadAll reads r to its end, at most limit bytes: a file that grows while
// it is read, or a pipe, is refused past the limit. name is r's name in
// errors.
func ReadAll(op, name string, r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, &fs.PathError{Op: op, Path: name, Err: fmt.Errorf("%w: over %d bytes, husk's limit", ErrTooLarge, limit)}
	}
	return b, nil
}

// Kind names the type of a file that is not a regular one, for errors.
func Kind(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m.IsDir():
		return "a directory"
	}
	return m.Type().String()
}
