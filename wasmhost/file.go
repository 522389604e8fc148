package wasmhost

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// DefaultMaxModuleSize bounds a module file. Compiling costs wazero about
// 150 bytes of host memory and 1 ms of CPU per byte of module (a 3 MB Go
// module: 458 MiB, 2.7 s): a hook module over this size is refused before
// anything is decoded. Go hook modules are 2–3 MB; C, Rust and WAT ones
// kilobytes.
const DefaultMaxModuleSize = 16 << 20

// ErrNotRegular is the cause of a module path that names something other
// than a regular file: a FIFO would block the reader forever (open(2) of a
// FIFO waits for a writer), a device would never end.
var ErrNotRegular = errors.New("not a regular file")

// ReadModule reads the module file at path, at most limit bytes (0:
// DefaultMaxModuleSize). It opens without blocking and checks, on the open
// descriptor, that path is a regular file before reading, so that a FIFO
// or a device given as a module fails at once instead of hanging the
// caller.
func ReadModule(path string, limit int64) ([]byte, error) {
	if limit <= 0 {
		limit = DefaultMaxModuleSize
	}
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
		return nil, &fs.PathError{Op: "read module", Path: path, Err: fmt.Errorf("%w (%s)", ErrNotRegular, fileType(info.Mode()))}
	}
	if info.Size() > limit {
		return nil, &fs.PathError{Op: "read module", Path: path, Err: fmt.Errorf("%w: %d bytes, limit %d", ErrModuleTooLarge, info.Size(), limit)}
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit { // it grew while read
		return nil, &fs.PathError{Op: "read module", Path: path, Err: fmt.Errorf("%w: over %d bytes", ErrModuleTooLarge, limit)}
	}
	return b, nil
}

// ErrModuleTooLarge is the cause of a module over the size limit.
var ErrModuleTooLarge = errors.New("module too large")

func fileType(m fs.FileMode) string {
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
