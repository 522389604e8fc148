package wasmhost

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"io"
	mrand "math/rand/v2"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/huskrt/husk/internal/wazerowasi"
)

// WASI functions whose work a module sets with one length: wazero's run to
// the end of that length however long it takes, and a host function is
// not stopped by the deadline (only the module's own code is, at its loop
// headers). Measured with a module of 1 GiB of memory and a 50 ms
// deadline: fd_write or fd_read over 128 million empty iovecs ran 4.2 s,
// random_get of 256 MiB 1.3 s (2 s from crypto/rand), poll_oneoff of 13
// million subscriptions 2.4 s; the path functions copy the path (up to the
// whole memory) before they look at the directory. husk's versions below
// do the same for a hook module's sandbox (stdio only, no filesystem)
// with their work bounded: at most maxIOVecs iovecs and maxSubscriptions
// subscriptions, as Linux refuses more than IOV_MAX iovecs with EINVAL,
// random bytes made in chunks between which the deadline is checked, and
// the path functions refused before the path is read (there is no
// directory to open it in).
const (
	maxIOVecs        = 1024
	maxSubscriptions = 4096
	randomChunk      = 64 << 10
)

// WASI errno values (wasi_snapshot_preview1's errno enum).
const (
	errnoSuccess = 0
	errnoBadf    = 8
	errnoFault   = 21
	errnoInval   = 28
	errnoIO      = 29
	errnoNotdir  = 54
	errnoNotsup  = 58
	errnoSpipe   = 70
)

// The stdio descriptors, the only ones a hook module has.
const (
	fdStdin  = 0
	fdStdout = 1
	fdStderr = 2
)

// wasiOwn are husk's versions of the WASI functions above, by name; their
// types are preview 1's (wazero's definitions).
var wasiOwn = map[string]api.GoModuleFunc{
	"fd_write":    wasiFdWrite,
	"fd_read":     wasiFdRead,
	"fd_pwrite":   wasiFdPositioned,
	"fd_pread":    wasiFdPositioned,
	"random_get":  wasiRandomGet,
	"poll_oneoff": wasiPollOneoff,
	// The path functions: the directory descriptor's position.
	"path_create_directory":   pathRefused(0),
	"path_filestat_get":       pathRefused(0),
	"path_filestat_set_times": pathRefused(0),
	"path_link":               pathRefused(0),
	"path_open":               pathRefused(0),
	"path_readlink":           pathRefused(0),
	"path_remove_directory":   pathRefused(0),
	"path_rename":             pathRefused(0),
	"path_symlink":            pathRefused(2),
	"path_unlink_file":        pathRefused(0),
}

// instantiateWASI instantiates, in rt, WASI preview 1's functions that a
// module imports (imports: their names), wazero's or husk's above; none
// when it imports none (a module written against husk's host functions
// alone). wazero's compiler makes a trampoline for each function of a host
// module at every load: all 46 of preview 1 cost a hook module's load
// more than the rest of its host functions.
func instantiateWASI(ctx context.Context, rt wazero.Runtime, imports []string) error {
	if len(imports) == 0 {
		return nil
	}
	w, err := wazerowasi.Load()
	if err != nil {
		return err
	}
	b := rt.NewHostModuleBuilder(wazerowasi.Module)
	for _, name := range imports {
		def, ok := w.Defs[name]
		if !ok {
			continue // not preview 1's: instantiating the module says so
		}
		var fn api.GoModuleFunction = w.Fn[name]
		if own, ok := wasiOwn[name]; ok {
			fn = own
		}
		b.NewFunctionBuilder().WithGoModuleFunction(fn, def.ParamTypes(), def.ResultTypes()).Export(name)
	}
	_, err = b.Instantiate(ctx)
	return err
}

// randomSource returns what random_get reads for an instance: the host's
// CSPRNG with GrantRandom, else the same deterministic bytes for every
// instance.
func randomSource(g Grants) io.Reader {
	if g&GrantRandom != 0 {
		return rand.Reader
	}
	var seed [32]byte
	copy(seed[:], "husk: deterministic random bytes")
	return mrand.NewChaCha8(seed)
}

// ended reports whether the instance's call has been stopped (deadline or
// caller): a host function doing long work checks it between pieces.
func (in *instance) ended() bool {
	select {
	case <-in.stopped:
		return true
	default:
		return false
	}
}

// wasiRandomGet implements random_get(buf, len): len random bytes at buf,
// made randomChunk bytes at a time, stopping (EIO) once the call has ended.
func wasiRandomGet(ctx context.Context, mod api.Module, stack []uint64) {
	buf, n := uint32(stack[0]), uint32(stack[1])
	stack[0] = errnoFault
	b, ok := mod.Memory().Read(buf, n)
	in, found := callInstance(ctx)
	if !ok || !found {
		return
	}
	for len(b) > 0 {
		if in.ended() {
			stack[0] = errnoIO
			return
		}
		c := b[:min(len(b), randomChunk)]
		if _, err := io.ReadFull(in.random, c); err != nil {
			stack[0] = errnoIO
			return
		}
		b = b[len(c):]
	}
	stack[0] = errnoSuccess
}

// iovecs returns the iovec array [iovs, iovs+8*count) of mod's memory, or
// an errno: EINVAL past maxIOVecs, EFAULT outside memory.
func iovecs(mod api.Module, iovs, count uint32) ([]byte, uint64) {
	if count > maxIOVecs {
		return nil, errnoInval
	}
	b, ok := mod.Memory().Read(iovs, 8*count)
	if !ok {
		return nil, errnoFault
	}
	return b, errnoSuccess
}

// wasiFdWrite implements fd_write(fd, iovs, iovs_len, result.nwritten) on
// the instance's stdout and stderr.
func wasiFdWrite(ctx context.Context, mod api.Module, stack []uint64) {
	fd, iovs, count, result := uint32(stack[0]), uint32(stack[1]), uint32(stack[2]), uint32(stack[3])
	in, found := callInstance(ctx)
	if !found || (fd != fdStdout && fd != fdStderr) {
		stack[0] = errnoBadf
		return
	}
	vecs, errno := iovecs(mod, iovs, count)
	if errno != errnoSuccess {
		stack[0] = errno
		return
	}
	mem := mod.Memory()
	var n uint32
	for i := 0; i < len(vecs); i += 8 {
		p, l := binary.LittleEndian.Uint32(vecs[i:]), binary.LittleEndian.Uint32(vecs[i+4:])
		b, ok := mem.Read(p, l)
		if !ok {
			stack[0] = errnoFault
			return
		}
		_, _ = in.output.Write(b) // keeps the first bytes only
		n += l
	}
	if !mem.WriteUint32Le(result, n) {
		stack[0] = errnoFault
		return
	}
	stack[0] = errnoSuccess
}

// wasiFdRead implements fd_read(fd, iovs, iovs_len, result.nread): stdin
// is empty, stdout and stderr cannot be read.
func wasiFdRead(_ context.Context, mod api.Module, stack []uint64) {
	fd, iovs, count, result := uint32(stack[0]), uint32(stack[1]), uint32(stack[2]), uint32(stack[3])
	if fd != fdStdin {
		stack[0] = errnoBadf
		return
	}
	vecs, errno := iovecs(mod, iovs, count)
	if errno != errnoSuccess {
		stack[0] = errno
		return
	}
	for i := 0; i < len(vecs); i += 8 {
		if _, ok := mod.Memory().Read(binary.LittleEndian.Uint32(vecs[i:]), binary.LittleEndian.Uint32(vecs[i+4:])); !ok {
			stack[0] = errnoFault
			return
		}
	}
	if !mod.Memory().WriteUint32Le(result, 0) { // end of file
		stack[0] = errnoFault
		return
	}
	stack[0] = errnoSuccess
}

// wasiFdPositioned implements fd_pread and fd_pwrite: the stdio descriptors
// have no position (ESPIPE), and there are no others.
func wasiFdPositioned(_ context.Context, _ api.Module, stack []uint64) {
	if fd := uint32(stack[0]); fd <= fdStderr {
		stack[0] = errnoSpipe
		return
	}
	stack[0] = errnoBadf
}

// pathRefused returns a path function that fails as there is no directory
// to resolve a path in, without reading the path: ENOTDIR for the stdio
// descriptors, EBADF for any other. dir is the position of the directory
// descriptor among the parameters.
func pathRefused(dir int) api.GoModuleFunc {
	return func(_ context.Context, _ api.Module, stack []uint64) {
		if fd := uint32(stack[dir]); fd <= fdStderr {
			stack[0] = errnoNotdir
			return
		}
		stack[0] = errnoBadf
	}
}

// Subscription and event layouts and kinds (wasi_snapshot_preview1).
const (
	subscriptionSize = 48
	eventSize        = 32
	eventClock       = 0
	eventFdRead      = 1
	eventFdWrite     = 2
	clockAbstime     = 1
)

// wasiPollOneoff implements poll_oneoff(in, out, nsubscriptions,
// result.nevents) as wazero does for a module with only stdio, for at
// most maxSubscriptions subscriptions (EINVAL past them, as poll(2)
// refuses more descriptors than it may have): every subscription is an
// event at once (reading stdin gives its end, reading stdout or stderr
// too, writing to a stdio descriptor is not supported, any other
// descriptor is bad), and when all are clocks or there are none the call
// sleeps for the shortest relative one (a real sleep, ended by the
// deadline, only with GrantClock).
func wasiPollOneoff(ctx context.Context, mod api.Module, stack []uint64) {
	inPtr, outPtr, n, result := uint32(stack[0]), uint32(stack[1]), uint32(stack[2]), uint32(stack[3])
	switch {
	case n == 0, n > maxSubscriptions:
		stack[0] = errnoInval
		return
	}
	mem := mod.Memory()
	subs, ok1 := mem.Read(inPtr, n*subscriptionSize)
	events, ok2 := mem.Read(outPtr, n*eventSize)
	if !ok1 || !ok2 || !mem.WriteUint32Le(result, n) {
		stack[0] = errnoFault
		return
	}
	clear(events)
	timeout, onlyClocks := int64(1<<63-1), true
	for i := range n {
		s, e := subs[i*subscriptionSize:], events[i*eventSize:]
		kind := s[8]
		var errno uint16
		switch kind {
		case eventClock:
			switch binary.LittleEndian.Uint16(s[40:]) { // flags
			case 0:
				timeout = min(timeout, int64(min(binary.LittleEndian.Uint64(s[24:]), 1<<63-1)))
			case clockAbstime:
				stack[0] = errnoNotsup
				return
			default:
				stack[0] = errnoInval
				return
			}
		case eventFdRead, eventFdWrite:
			fd := int32(binary.LittleEndian.Uint32(s[16:]))
			switch {
			case fd < 0:
				stack[0] = errnoBadf
				return
			case fd > fdStderr:
				errno = errnoBadf
			case kind == eventFdWrite:
				errno = errnoNotsup
			default:
				onlyClocks = false // ready: the end of stdin
			}
		default:
			stack[0] = errnoInval
			return
		}
		copy(e, s[:8]) // userdata
		binary.LittleEndian.PutUint16(e[8:], errno)
		binary.LittleEndian.PutUint32(e[10:], uint32(kind))
	}
	if in, found := callInstance(ctx); found && onlyClocks && timeout > 0 && in.m.cfg.Grants&GrantClock != 0 {
		in.sleep(timeout)
	}
	stack[0] = errnoSuccess
}
