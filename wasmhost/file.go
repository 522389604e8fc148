package wasmhost

import "github.com/huskrt/husk/internal/boundedfile"

// DefaultMaxModuleSize bounds a module file. Compiling costs wazero about
// 150 bytes of host memory and 1 ms of CPU per byte of module (a 3 MB Go
// module: 458 MiB, 2.7 s): a hook module over this size is refused before
// anything is decoded. Go hook modules are 2–3 MB; C, Rust and WAT ones
// kilobytes.
const DefaultMaxModuleSize = 16 << 20

// ErrNotRegular is the cause of a module path that names something other
// than a regular file: a FIFO would block the reader forever (open(2) of a
// FIFO waits for a writer), a device would never end.
var ErrNotRegular = boundedfile.ErrNotRegular

// ErrModuleTooLarge is the cause of a module over the size limit.
var ErrModuleTooLarge = boundedfile.ErrTooLarge

// ReadModule reads the module file at path, at most limit bytes (0:
// DefaultMaxModuleSize), through boundedfile: a FIFO or a device given as
// a module fails at once instead of hanging the caller.
func ReadModule(path string, limit int64) ([]byte, error) {
	if limit <= 0 {
		limit = DefaultMaxModuleSize
	}
	return boundedfile.Read("read module", path, limit)
}
