package wasmhost

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The kinds of module failure. Every error from Load and Module.Decide is an
// *Error whose Kind is one of these, so that callers branch with errors.Is.
var (
	// ErrLoad: the bytes are not a valid Wasm module, or it cannot be
	// compiled or instantiated within the limits (memory, imports).
	ErrLoad = errors.New("cannot load module")
	// ErrABI: the module does not implement the hook ABI: a missing or
	// mistyped export, an import husk does not provide, a failed husk_alloc,
	// a buffer outside its memory.
	ErrABI = errors.New("hook ABI violation")
	// ErrInit: husk_init rejected the module's configuration.
	ErrInit = errors.New("module rejected its configuration")
	// ErrTrap: the module trapped (unreachable, out-of-bounds access, stack
	// overflow, a failed memory.grow it did not handle...).
	ErrTrap = errors.New("wasm trap")
	// ErrTimeout: the call ran past its deadline and was stopped.
	ErrTimeout = errors.New("deadline exceeded")
	// ErrExit: the module exited (WASI proc_exit), as a Go module does on
	// panic or when it runs out of memory.
	ErrExit = errors.New("module exited")
	// ErrOutput: the decision is larger than Config.MaxOutput.
	ErrOutput = errors.New("output too large")
	// ErrClosed: the module (or its host) was closed.
	ErrClosed = errors.New("module closed")
)

// Error is a failure to load or call one module.
type Error struct {
	Module string        // ModuleConfig.Name
	Op     string        // "load", "init" or "decide"
	Kind   error         // one of the Err* kinds above
	Err    error         // the cause, when there is more to say; may be nil
	Output string        // the start of what the module wrote to stdout and stderr (Error shows its first line)
	Limit  time.Duration // the deadline, for ErrTimeout
}

// Error formats e as `module "name": op: kind: cause (output: "...")`.
func (e *Error) Error() string {
	s := "module " + strconv.Quote(e.Module) + ": " + e.Op + ": " + e.Kind.Error()
	if e.Kind == ErrTimeout && e.Limit > 0 {
		s += " (" + e.Limit.String() + ")"
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	if e.Output != "" {
		// The first line only (a Go panic's message, not its trace): this
		// text reaches users; logs carry Output in full.
		first, _, cut := strings.Cut(e.Output, "\n")
		if cut {
			first += " …"
		}
		s += " (output: " + strconv.Quote(first) + ")"
	}
	return s
}

// Unwrap returns the kind and the cause.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

// errorf is a shorthand for an *Error with a formatted cause.
func errorf(module, op string, kind error, format string, args ...any) *Error {
	return &Error{Module: module, Op: op, Kind: kind, Err: fmt.Errorf(format, args...)}
}
