package runner

import (
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/huskrt/husk/internal/wazerowasi"
	"github.com/huskrt/husk/runtime/wasm/runnerapi"
)

// WASI preview1 errno values (the interface's, not Linux's).
const (
	errnoSuccess     = 0
	errnoBadf        = 8
	errnoFault       = 21
	errnoInval       = 28
	errnoNametoolong = 37
	errnoNotsock     = 57
	errnoNotsup      = 58
	errnoRange       = 68
)

// instantiateWASI instantiates wasi_snapshot_preview1 for the module:
// wazero's implementation, with the runner's own in place of the calls
// where wazero's is wrong (each says how), and the environment's calls
// (environ.go). The runner's delegate to
// wazero's, which they call with the guest module, so that they work on
// the same descriptor table. Only the functions named in imports are in
// the host module (all of them when imports is nil): wazero compiles a
// trampoline for each function of a host module on every start, and a
// module imports a few of the 46.
func instantiateWASI(ctx context.Context, rt wazero.Runtime, preopens []runnerapi.Preopen, imports []string, env *moduleEnv) error {
	orig, defs, err := wazeroWASI()
	if err != nil {
		return err
	}
	dirs := map[string]string{}
	for _, p := range preopens {
		dirs[p.Name] = p.Dir
	}
	f := &fixes{orig: orig, fds: map[uint32]opened{}, preopens: dirs}
	own := map[string]api.GoModuleFunc{
		"sock_shutdown":           f.sockShutdown,
		"fd_renumber":             f.fdRenumber,
		"path_readlink":           f.pathReadlink,
		"fd_prestat_dir_name":     f.fdPrestatDirName,
		"path_link":               f.pathLink,
		"fd_allocate":             f.fdAllocate,
		"path_open":               f.pathOpen,
		"fd_fdstat_get":           f.fdFdstatGet,
		"fd_close":                f.fdClose,
		"fd_fdstat_set_rights":    f.fdFdstatSetRights,
		"poll_oneoff":             f.pollOneoff,
		"path_filestat_set_times": f.pathFilestatSetTimes,
		"fd_read":                 f.fdRead,
		"fd_pread":                f.fdPread,
		"fd_write":                f.fdWrite,
		"fd_pwrite":               f.fdPwrite,
		"environ_sizes_get":       env.sizesGet,
		"environ_get":             env.get,
	}
	if imports == nil {
		imports = slices.Sorted(maps.Keys(defs))
	}
	b := rt.NewHostModuleBuilder(runnerapi.WASIModule)
	for _, name := range imports {
		def, ok := defs[name]
		if !ok {
			continue // not WASI's: instantiating the module says so
		}
		var fn api.GoModuleFunction = orig[name]
		if o, ok := own[name]; ok {
			fn = o
		}
		b.NewFunctionBuilder().WithGoModuleFunction(fn, def.ParamTypes(), def.ResultTypes()).Export(name)
	}
	_, err = b.Instantiate(ctx)
	return err
}

// wasiImports are the names of the functions mod imports from
// wasi_snapshot_preview1 (never nil).
func wasiImports(mod wazero.CompiledModule) []string { return wazerowasi.Imports(mod) }

// wazeroWASI returns wazero's preview1 functions by name (wazerowasi), and
// checks that each the runner's own calls delegate to is there.
func wazeroWASI() (map[string]api.GoModuleFunction, map[string]api.FunctionDefinition, error) {
	w, err := wazerowasi.Load()
	if err != nil {
		return nil, nil, err
	}
	for _, name := range []string{"sock_shutdown", "fd_renumber", "path_readlink", "fd_advise", "fd_prestat_get", "fd_prestat_dir_name", "path_link", "fd_allocate", "fd_fdstat_get", "path_open", "fd_close", "fd_fdstat_set_rights", "fd_read", "fd_pread", "fd_write", "fd_pwrite", "fd_fdstat_set_flags", "poll_oneoff", "path_filestat_set_times", "path_filestat_get"} {
		if w.Fn[name] == nil {
			return nil, nil, fmt.Errorf("wazero's WASI has no %s", name)
		}
	}
	return w.Fn, w.Defs, nil
}

// fixes are the runner's preview1 calls.
type fixes struct {
	orig map[string]api.GoModuleFunction
	// fds are what path_open asked for each descriptor it opened (wazero
	// keeps neither the rights nor the SYNC flags it opened a file with).
	// Descriptors not here (stdio, preopens) are wazero's alone.
	fds map[uint32]opened
	// preopens are the preopened directories (in the container) by the
	// module's names for them.
	preopens map[string]string
}

// opened is what path_open was asked for.
type opened struct {
	rights, inheriting uint64
	flags              uint16 // the SYNC flags (DSYNC, RSYNC, SYNC)
	// dir is the descriptor's path in the container: its preopen's
	// directory joined with the paths it was opened by, as wazero
	// resolves them; "" when not known.
	dir string
}

// call runs wazero's name with params and returns its errno.
func (f *fixes) call(ctx context.Context, mod api.Module, name string, params ...uint64) uint64 {
	stack := make([]uint64, max(len(params), 1))
	copy(stack, params)
	f.orig[name].Call(ctx, mod, stack)
	return stack[0]
}

// isOpen tells whether fd is an open descriptor of mod, by wazero's
// fd_advise (offset 0, length 0, advice normal), which does nothing else.
func (f *fixes) isOpen(ctx context.Context, mod api.Module, fd uint64) bool {
	return f.call(ctx, mod, "fd_advise", fd, 0, 0, 0) == errnoSuccess
}

// scratchCall runs call with the address of n bytes of mod's memory,
// which it saves before and restores after, and returns call's errno and
// a copy of those bytes as call left them. A preview1 module has one
// thread and is inside the host call, so nothing else sees the bytes
// change. ok is false when the memory is smaller than n.
func scratchCall(mod api.Module, n uint32, call func(at uint32) uint64) (errno uint64, out []byte, ok bool) {
	mem := mod.Memory()
	if mem == nil {
		return 0, nil, false
	}
	region, ok := mem.Read(0, n)
	if !ok {
		return 0, nil, false
	}
	saved := append([]byte(nil), region...)
	errno = call(0)
	region, _ = mem.Read(0, n)
	out = append([]byte(nil), region...)
	mem.Write(0, saved)
	return errno, out, true
}

// fileTypeDirectory is the WASI filetype of a directory.
const fileTypeDirectory = 3

// isDir tells whether fd is an open directory of mod, by wazero's
// fd_fdstat_get (whose first byte is the filetype).
func (f *fixes) isDir(ctx context.Context, mod api.Module, fd uint64) bool {
	const fdstat = 24
	errno, out, ok := scratchCall(mod, fdstat, func(at uint32) uint64 {
		return f.call(ctx, mod, "fd_fdstat_get", fd, uint64(at))
	})
	return ok && errno == errnoSuccess && out[0] == fileTypeDirectory
}

// fdAllocate: wazero allocates on a directory (it does nothing there);
// fallocate(2) fails with EBADF on one, and so does the runner.
func (f *fixes) fdAllocate(ctx context.Context, mod api.Module, stack []uint64) {
	if f.isDir(ctx, mod, stack[0]) {
		stack[0] = errnoBadf
		return
	}
	f.orig["fd_allocate"].Call(ctx, mod, stack)
}

// sockShutdown: wazero answers EBADF for an open descriptor that is not a
// socket; WASI (and POSIX) say ENOTSOCK.
func (f *fixes) sockShutdown(ctx context.Context, mod api.Module, stack []uint64) {
	fd := stack[0]
	f.orig["sock_shutdown"].Call(ctx, mod, stack)
	if stack[0] == errnoBadf && f.isOpen(ctx, mod, fd) {
		stack[0] = errnoNotsock
	}
}

// fdRenumber: wazero renumbers onto a descriptor that is not open; WASI
// says EBADF (fd_renumber replaces an open descriptor, it does not
// allocate one). Renumbering a descriptor onto itself does nothing (wazero
// closes the file and leaves the closed file in the table).
func (f *fixes) fdRenumber(ctx context.Context, mod api.Module, stack []uint64) {
	from, to := uint64(uint32(stack[0])), uint64(uint32(stack[1]))
	if !f.isOpen(ctx, mod, from) || !f.isOpen(ctx, mod, to) {
		stack[0] = errnoBadf
		return
	}
	if from == to {
		stack[0] = errnoSuccess
		return
	}
	stack[0], stack[1] = from, to
	f.orig["fd_renumber"].Call(ctx, mod, stack)
	// wazero refuses to renumber stdio or a preopen, from or onto (ENOTSUP),
	// but closes them. Onto one: close the destination first, then renumber
	// onto the free number. From stdio: wazero's descriptor table marks
	// stdio as preopened, which is all that stops it; the runner unmarks the
	// entry (releaseStdio) and renumbers. A preopened directory stays where
	// it is: wazero resolves paths under it by that mark.
	if stack[0] == errnoNotsup {
		restore, ok := func() {}, true
		switch {
		case from <= 2: // (wazero's fd_prestat_get answers for stdio too)
			restore, ok = releaseStdio(mod, uint32(from))
		case f.isPreopenDir(ctx, mod, from):
			ok = false
		}
		if ok && f.call(ctx, mod, "fd_close", to) == errnoSuccess {
			delete(f.fds, uint32(to))
			stack[0], stack[1] = from, to
			f.orig["fd_renumber"].Call(ctx, mod, stack)
		}
		if stack[0] != errnoSuccess {
			restore()
		}
	}
	if stack[0] == errnoSuccess {
		if o, ok := f.fds[uint32(from)]; ok {
			f.fds[uint32(to)] = o
		} else {
			delete(f.fds, uint32(to))
		}
		delete(f.fds, uint32(from))
	}
}

// readlinkMax is the longest link path_readlink reads whole when the
// module's buffer is shorter (Linux: PATH_MAX, NUL included).
const readlinkMax = 4096

// pathReadlink: wazero fails with ERANGE when the buffer is shorter than
// the link; WASI (like readlink(2)) fills the buffer with the link's first
// bytes and says how many. On ERANGE the runner reads the whole link with
// wazero's call into a scratch region of the module's memory (saved
// before and restored after: a preview1 module has one thread, and is
// inside this call) and copies the buffer's worth into the buffer.
func (f *fixes) pathReadlink(ctx context.Context, mod api.Module, stack []uint64) {
	params := [6]uint64(stack[:6])
	f.orig["path_readlink"].Call(ctx, mod, stack)
	if stack[0] != errnoRange {
		return
	}
	fd, path, pathLen := params[0], uint32(params[1]), uint32(params[2])
	buf, bufLen, usedPtr := uint32(params[3]), uint32(params[4]), uint32(params[5])
	mem := mod.Memory()
	if mem == nil {
		stack[0] = errnoFault
		return
	}
	if _, ok := mem.Read(buf, bufLen); !ok {
		stack[0] = errnoFault
		return
	}
	if _, ok := mem.Read(usedPtr, 4); !ok {
		stack[0] = errnoFault
		return
	}
	const need = 4 + readlinkMax // bufused, then the link
	scratch, ok := scratchRegion(mem.Size(), need, path, pathLen)
	if !ok {
		return // ERANGE stands: no room to read the link whole
	}
	region, _ := mem.Read(scratch, need)
	saved := append([]byte(nil), region...)
	errno := f.call(ctx, mod, "path_readlink", fd, uint64(path), uint64(pathLen), uint64(scratch+4), readlinkMax, uint64(scratch))
	n, _ := mem.ReadUint32Le(scratch)
	var link []byte
	if errno == errnoSuccess && n <= readlinkMax {
		n = min(n, bufLen)
		b, _ := mem.Read(scratch+4, n)
		link = append([]byte(nil), b...)
	}
	// Restore before writing the result, which may lie in the region.
	mem.Write(scratch, saved)
	switch {
	case errno != errnoSuccess:
		stack[0] = errno
		return
	case link == nil && n > 0:
		stack[0] = errnoRange
		return
	}
	if !mem.Write(buf, link) || !mem.WriteUint32Le(usedPtr, n) {
		stack[0] = errnoFault
		return
	}
	stack[0] = errnoSuccess
}

// scratchRegion picks need bytes of a memory of size bytes that do not
// overlap the path argument [path, path+pathLen): at 0, or just after the
// path. ok is false when neither fits.
func scratchRegion(size, need, path, pathLen uint32) (uint32, bool) {
	end := uint64(path) + uint64(pathLen)
	if uint64(need) <= uint64(path) && uint64(need) <= uint64(size) {
		return 0, true
	}
	start := (end + 7) &^ 7
	if start+uint64(need) <= uint64(size) {
		return uint32(start), true
	}
	return 0, false
}

// fdPrestatDirName: wazero fails with ENAMETOOLONG when the buffer is
// longer than the preopen's name and truncates the name into a shorter
// one; WASI takes a buffer at least as long as the name (the module asked
// fd_prestat_get for its length) and fails a shorter one. The runner asks
// wazero's fd_prestat_get for the length (into 8 bytes of the module's
// memory, saved and restored), then wazero's fd_prestat_dir_name for
// exactly that many bytes.
func (f *fixes) fdPrestatDirName(ctx context.Context, mod api.Module, stack []uint64) {
	fd, buf, bufLen := stack[0], uint32(stack[1]), uint32(stack[2])
	mem := mod.Memory()
	if mem == nil {
		stack[0] = errnoFault
		return
	}
	if _, ok := mem.Read(buf, bufLen); !ok {
		stack[0] = errnoFault
		return
	}
	const prestat = 8 // tag, padding, u32 name length
	errno, out, ok := scratchCall(mod, prestat, func(at uint32) uint64 {
		return f.call(ctx, mod, "fd_prestat_get", fd, uint64(at))
	})
	if !ok {
		stack[0] = errnoFault
		return
	}
	n := binary.LittleEndian.Uint32(out[4:])
	switch {
	case errno != errnoSuccess:
		stack[0] = errno
	case bufLen < n:
		stack[0] = errnoNametoolong
	default:
		stack[0] = f.call(ctx, mod, "fd_prestat_dir_name", fd, uint64(buf), uint64(n))
	}
}

// lookupSymlinkFollow is LOOKUPFLAGS_SYMLINK_FOLLOW.
const lookupSymlinkFollow = 1

// pathLink: wazero ignores old_flags and links the symlink itself when
// asked to follow it; the runner refuses LOOKUPFLAGS_SYMLINK_FOLLOW with
// EINVAL (as wasmtime does: linkat's AT_SYMLINK_FOLLOW cannot be done
// within the preopen's confinement without resolving the link by hand).
func (f *fixes) pathLink(ctx context.Context, mod api.Module, stack []uint64) {
	if uint32(stack[1])&lookupSymlinkFollow != 0 {
		stack[0] = errnoInval
		return
	}
	f.orig["path_link"].Call(ctx, mod, stack)
}

// WASI fdflags and rights the runner keeps.
const (
	fdflagsAppend            = 1
	fdflagsSync              = 2 | 8 | 16 // DSYNC, RSYNC, SYNC
	rightFdRead              = 1 << 1
	rightFdWrite             = 1 << 6
	errnoNotcapable          = 76
	oflagsTrunc              = 8
	rightPathFilestatSetSize = 1 << 19
)

// fdFdstatSetRights: wazero has no rights (ENOSYS). The runner keeps them
// for each descriptor: a descriptor's rights can only shrink (more is
// ENOTCAPABLE); fd_fdstat_get reports them, and fd_read, fd_pread,
// fd_write, fd_pwrite and a truncating path_open keep to them. Other
// rights are reported but not enforced (wazero does not look at them).
func (f *fixes) fdFdstatSetRights(ctx context.Context, mod api.Module, stack []uint64) {
	fd, rights, inheriting := uint32(stack[0]), stack[1], stack[2]
	const fdstat = 24
	errno, out, ok := scratchCall(mod, fdstat, func(at uint32) uint64 {
		return f.call(ctx, mod, "fd_fdstat_get", uint64(fd), uint64(at))
	})
	switch {
	case !ok:
		stack[0] = errnoFault
		return
	case errno != errnoSuccess:
		stack[0] = errno
		return
	}
	le := binary.LittleEndian
	cur := opened{rights: le.Uint64(out[8:]), inheriting: le.Uint64(out[16:])}
	if o, ok := f.fds[fd]; ok {
		cur.rights &= o.rights
		cur.inheriting &= o.inheriting
		cur.flags, cur.dir = o.flags, o.dir
	}
	if rights&^cur.rights != 0 || inheriting&^cur.inheriting != 0 {
		stack[0] = errnoNotcapable
		return
	}
	cur.rights, cur.inheriting = rights, inheriting
	f.fds[fd] = cur
	stack[0] = errnoSuccess
}

// pathOpen: wazero opens the file as asked but keeps neither the rights
// nor the SYNC flags; the runner records them for the new descriptor, so
// that fd_fdstat_get reports them and fd_read and fd_write keep to them.
func (f *fixes) pathOpen(ctx context.Context, mod api.Module, stack []uint64) {
	dirFd, pathPtr, pathLen, oflags := uint32(stack[0]), uint32(stack[2]), uint32(stack[3]), uint32(stack[4])
	rights, inheriting, flags, resultFd := stack[5], stack[6], uint16(stack[7]), uint32(stack[8])
	parent, hasParent := f.fds[dirFd]
	if hasParent {
		if oflags&oflagsTrunc != 0 && parent.rights&rightPathFilestatSetSize == 0 {
			stack[0] = errnoNotcapable
			return
		}
		rights &= parent.inheriting
		inheriting &= parent.inheriting
	}
	f.orig["path_open"].Call(ctx, mod, stack)
	if stack[0] != errnoSuccess {
		return
	}
	fd, ok := mod.Memory().ReadUint32Le(resultFd)
	if !ok {
		return // wazero wrote it; cannot happen
	}
	o := opened{rights: rights, inheriting: inheriting, flags: flags & fdflagsSync}
	if dir := f.dirOf(ctx, mod, dirFd); dir != "" {
		if p, ok := mod.Memory().Read(pathPtr, pathLen); ok {
			o.dir = joinInside(dir, string(p))
		}
	}
	f.fds[fd] = o
}

// fdClose forgets what path_open recorded.
func (f *fixes) fdClose(ctx context.Context, mod api.Module, stack []uint64) {
	fd := uint32(stack[0])
	f.orig["fd_close"].Call(ctx, mod, stack)
	if stack[0] == errnoSuccess {
		delete(f.fds, fd)
	}
}

// fdFdstatGet: wazero reports every right and no SYNC flag; for a
// descriptor path_open opened the runner reports the rights asked for
// (within wazero's) and the SYNC flags it was opened with.
func (f *fixes) fdFdstatGet(ctx context.Context, mod api.Module, stack []uint64) {
	fd, result := uint32(stack[0]), uint32(stack[1])
	f.orig["fd_fdstat_get"].Call(ctx, mod, stack)
	o, ok := f.fds[fd]
	if stack[0] != errnoSuccess || !ok {
		return
	}
	buf, ok := mod.Memory().Read(result, 24) // wazero checked it
	if !ok {
		return
	}
	// filetype u8, pad, flags u16 at 2, rights u64 at 8, inheriting at 16
	le := binary.LittleEndian
	le.PutUint16(buf[2:], le.Uint16(buf[2:])|o.flags)
	le.PutUint64(buf[8:], le.Uint64(buf[8:])&o.rights)
	le.PutUint64(buf[16:], le.Uint64(buf[16:])&o.inheriting)
}

// lacks tells whether fd was opened by path_open without right.
func (f *fixes) lacks(fd uint64, right uint64) bool {
	o, ok := f.fds[uint32(fd)]
	return ok && o.rights&right == 0
}

// fdRead, fdPread, fdWrite, fdPwrite: ENOTCAPABLE without the right to
// read (write) that path_open was asked for; wazero opens a file read and
// write for some requests that ask only one of them.
func (f *fixes) fdRead(ctx context.Context, mod api.Module, stack []uint64) {
	f.withRight(ctx, mod, stack, "fd_read", rightFdRead)
}

func (f *fixes) fdPread(ctx context.Context, mod api.Module, stack []uint64) {
	f.withRight(ctx, mod, stack, "fd_pread", rightFdRead)
}

func (f *fixes) fdWrite(ctx context.Context, mod api.Module, stack []uint64) {
	f.withRight(ctx, mod, stack, "fd_write", rightFdWrite)
}

// fdPwrite also writes at the offset on a descriptor opened with
// FDFLAGS_APPEND (as POSIX says; WASI leaves the choice between that and
// Linux's append): wazero writes with Go's File.WriteAt, which refuses a
// file opened for appending. On that failure the runner turns APPEND off
// with wazero's fd_fdstat_set_flags (which reopens the file, keeping its
// offset), writes, and turns it on again.
func (f *fixes) fdPwrite(ctx context.Context, mod api.Module, stack []uint64) {
	params := [5]uint64(stack[:5])
	f.withRight(ctx, mod, stack, "fd_pwrite", rightFdWrite)
	if stack[0] == errnoSuccess || stack[0] == errnoNotcapable {
		return
	}
	fd := params[0]
	const fdstat = 24
	errno, out, ok := scratchCall(mod, fdstat, func(at uint32) uint64 {
		return f.call(ctx, mod, "fd_fdstat_get", fd, uint64(at))
	})
	if !ok || errno != errnoSuccess {
		return
	}
	flags := binary.LittleEndian.Uint16(out[2:])
	if flags&fdflagsAppend == 0 {
		return
	}
	if f.call(ctx, mod, "fd_fdstat_set_flags", fd, uint64(flags&^fdflagsAppend)) != errnoSuccess {
		return
	}
	copy(stack, params[:])
	f.orig["fd_pwrite"].Call(ctx, mod, stack)
	if errno := f.call(ctx, mod, "fd_fdstat_set_flags", fd, uint64(flags)); errno != errnoSuccess && stack[0] == errnoSuccess {
		stack[0] = errno
	}
}

func (f *fixes) withRight(ctx context.Context, mod api.Module, stack []uint64, name string, right uint64) {
	if f.lacks(stack[0], right) {
		stack[0] = errnoNotcapable
		return
	}
	f.orig[name].Call(ctx, mod, stack)
}

// Layout of poll_oneoff's subscriptions and events.
const (
	subscriptionSize = 48 // userdata u64, tag u8 at 8, fd u32 at 16
	eventSize        = 32 // userdata u64, error u16 at 8, type u8 at 10, nbytes u64 at 16, flags u16 at 24
	eventTypeFdWrite = 2
)

// pollOneoff: wazero answers ENOTSUP for an fd_write subscription. A
// descriptor the module can write to is always ready to be written (the
// runner's are files, pipes and terminals, which wazero writes with
// blocking writes), so when there are fd_write subscriptions the runner
// answers at once with an event for each: ready, or EBADF for a
// descriptor that is not open. Without any, wazero's poll_oneoff answers.
// The subscriptions are read where the module put them, within its
// memory.
func (f *fixes) pollOneoff(ctx context.Context, mod api.Module, stack []uint64) {
	in, out, n, neventsPtr := uint32(stack[0]), uint32(stack[1]), uint32(stack[2]), uint32(stack[3])
	mem := mod.Memory()
	if mem == nil || n == 0 {
		f.orig["poll_oneoff"].Call(ctx, mod, stack)
		return
	}
	if uint64(n)*subscriptionSize > uint64(mem.Size()) { // and no overflow below
		stack[0] = errnoFault
		return
	}
	subs, ok := mem.Read(in, n*subscriptionSize)
	if !ok {
		stack[0] = errnoFault
		return
	}
	var writes []int
	for i := range int(n) {
		if subs[i*subscriptionSize+8] == eventTypeFdWrite {
			writes = append(writes, i)
		}
	}
	if len(writes) == 0 {
		f.orig["poll_oneoff"].Call(ctx, mod, stack)
		return
	}
	events, ok := mem.Read(out, uint32(len(writes))*eventSize)
	if !ok {
		stack[0] = errnoFault
		return
	}
	if _, ok := mem.Read(neventsPtr, 4); !ok {
		stack[0] = errnoFault
		return
	}
	// Copy what is needed first: out may overlap in.
	type sub struct {
		userdata uint64
		fd       uint32
	}
	le := binary.LittleEndian
	ready := make([]sub, len(writes))
	for j, i := range writes {
		b := subs[i*subscriptionSize:]
		ready[j] = sub{le.Uint64(b), le.Uint32(b[16:])}
	}
	for j, r := range ready {
		e := events[j*eventSize : (j+1)*eventSize]
		clear(e)
		le.PutUint64(e, r.userdata)
		if !f.isOpen(ctx, mod, uint64(r.fd)) {
			le.PutUint16(e[8:], errnoBadf)
		}
		e[10] = eventTypeFdWrite
	}
	mem.WriteUint32Le(neventsPtr, uint32(len(ready)))
	stack[0] = errnoSuccess
}

// dirOf is fd's path in the container: a preopen's directory (found by
// the name wazero's fd_prestat_dir_name gives it), or what path_open
// recorded; "" when not known.
func (f *fixes) dirOf(ctx context.Context, mod api.Module, fd uint32) string {
	if o, ok := f.fds[fd]; ok {
		return o.dir
	}
	errno, out, ok := scratchCall(mod, 8, func(at uint32) uint64 {
		return f.call(ctx, mod, "fd_prestat_get", uint64(fd), uint64(at))
	})
	if !ok || errno != errnoSuccess || out[0] != 0 {
		return ""
	}
	n := binary.LittleEndian.Uint32(out[4:])
	if n == 0 || n > runnerapi.MaxPreopenLength {
		return ""
	}
	errno, name, ok := scratchCall(mod, n, func(at uint32) uint64 {
		return f.call(ctx, mod, "fd_prestat_dir_name", uint64(fd), uint64(at), uint64(n))
	})
	if !ok || errno != errnoSuccess {
		return ""
	}
	return f.preopens[string(name)]
}

// joinInside joins a relative WASI path to dir, or returns "" when the
// path is absolute or climbs out of dir ("..").
func joinInside(dir, p string) string {
	if p == "" || strings.HasPrefix(p, "/") || strings.ContainsRune(p, 0) {
		return ""
	}
	c := path.Clean(p)
	if c == ".." || strings.HasPrefix(c, "../") {
		return ""
	}
	return path.Join(dir, c)
}

// fstflags of path_filestat_set_times.
const (
	fstAtim    = 1
	fstAtimNow = 2
	fstMtim    = 4
	fstMtimNow = 8
)

// pathFilestatSetTimes: without LOOKUPFLAGS_SYMLINK_FOLLOW WASI sets the
// times of a symlink itself; wazero follows it. When the path names a
// symlink (by wazero's own path_filestat_get, which does not follow), the
// runner sets its times with utimensat(AT_SYMLINK_NOFOLLOW) on the path in
// the container (the descriptor's directory joined with the path, as
// wazero resolves it; a path that climbs out of the directory is left to
// wazero). Everything else is wazero's.
func (f *fixes) pathFilestatSetTimes(ctx context.Context, mod api.Module, stack []uint64) {
	fd, lookup, pathPtr, pathLen := uint32(stack[0]), uint32(stack[1]), uint32(stack[2]), uint32(stack[3])
	atim, mtim, fst := stack[4], stack[5], uint16(stack[6])
	if lookup&lookupSymlinkFollow != 0 || !f.isSymlink(ctx, mod, fd, pathPtr, pathLen) {
		f.orig["path_filestat_set_times"].Call(ctx, mod, stack)
		return
	}
	p, ok := mod.Memory().Read(pathPtr, pathLen)
	dir := f.dirOf(ctx, mod, fd)
	target := joinInside(dir, string(p))
	if !ok || dir == "" || target == "" {
		f.orig["path_filestat_set_times"].Call(ctx, mod, stack)
		return
	}
	if fst&fstAtim != 0 && fst&fstAtimNow != 0 || fst&fstMtim != 0 && fst&fstMtimNow != 0 {
		stack[0] = errnoInval
		return
	}
	ts := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, {Nsec: unix.UTIME_OMIT}}
	for i, t := range []struct {
		set, now uint16
		v        uint64
	}{{fstAtim, fstAtimNow, atim}, {fstMtim, fstMtimNow, mtim}} {
		switch {
		case fst&t.now != 0:
			ts[i] = unix.Timespec{Nsec: unix.UTIME_NOW}
		case fst&t.set != 0:
			ts[i] = unix.NsecToTimespec(int64(t.v))
		}
	}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, target, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		stack[0] = errnoOf(err)
		return
	}
	stack[0] = errnoSuccess
}

// isSymlink asks wazero's path_filestat_get, without following, whether
// the path names a symlink (filetype 7, at byte 16 of the filestat).
func (f *fixes) isSymlink(ctx context.Context, mod api.Module, fd, pathPtr, pathLen uint32) bool {
	const filestat = 64
	size := uint64(mod.Memory().Size())
	if uint64(pathPtr)+uint64(pathLen) > size {
		return false // wazero says EFAULT
	}
	// The scratch region must not overlap the path: below it, or after.
	at, ok := scratchRegion(uint32(size), filestat, pathPtr, pathLen)
	if !ok {
		return false
	}
	mem := mod.Memory()
	region, _ := mem.Read(at, filestat)
	saved := append([]byte(nil), region...)
	errno := f.call(ctx, mod, "path_filestat_get", uint64(fd), 0, uint64(pathPtr), uint64(pathLen), uint64(at))
	b, _ := mem.Read(at+16, 1)
	symlink := errno == errnoSuccess && b[0] == fileTypeSymlink
	mem.Write(at, saved)
	return symlink
}

// fileTypeSymlink is the WASI filetype of a symbolic link.
const fileTypeSymlink = 7

// errnoOf maps a Linux errno to WASI's, for the few calls the runner
// makes itself.
func errnoOf(err error) uint64 {
	switch err {
	case unix.ENOENT:
		return 44
	case unix.EACCES:
		return 2
	case unix.EPERM:
		return 63
	case unix.EROFS:
		return 69
	case unix.EINVAL:
		return errnoInval
	case unix.ENOTDIR:
		return 54
	case unix.ELOOP:
		return 32
	case unix.ENAMETOOLONG:
		return errnoNametoolong
	default:
		return 29 // EIO
	}
}

// isPreopenDir tells whether fd is a preopened directory, by wazero's
// fd_prestat_get.
func (f *fixes) isPreopenDir(ctx context.Context, mod api.Module, fd uint64) bool {
	errno, _, ok := scratchCall(mod, 8, func(at uint32) uint64 {
		return f.call(ctx, mod, "fd_prestat_get", fd, uint64(at))
	})
	return ok && errno == errnoSuccess
}
