package wasmhost

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/sys"
)

// instance is one started instance of a module. It is used by one call at
// a time (the pool hands it out), so its fields need no lock.
type instance struct {
	m        *Module
	mod      api.Module
	mem      api.Memory
	linear   *linearMemory // backs mem; unmapped by close
	allocFn  api.Function
	decideFn api.Function
	initFn   api.Function      // nil when the module does not export husk_init
	stack    [4]uint64         // reused by CallWithStack
	output   head              // the module's stdout and stderr, first bytes of a call
	logs     int               // husk.log lines in the current call
	q        query             // the current call's JSON input, for husk.json_*
	sets     []*stringSet      // registered by husk.set_new
	setBytes int               // their cost, at most maxSetBytes
	random   io.Reader         // what random_get reads (randomSource)
	frames   api.MutableGlobal // the frame counter (instrumentStack); nil if the module has none

	// stopped is closed when a deadline or the caller ends the instance:
	// it wakes a sleep in a host function, which closing the module does
	// not interrupt.
	stopped  chan struct{}
	stopOnce sync.Once

	mu       sync.Mutex
	sleeping bool   // in sleep; guarded by mu
	killed   uint32 // the exit code kill closed (or will close) the module with; guarded by mu
}

// stop ends the sleeps of the instance, now and later.
func (in *instance) stop() { in.stopOnce.Do(func() { close(in.stopped) }) }

// kill ends the call running in the instance (from the deadline's timer or
// the caller's context): it closes the module with code, which its code
// sees at the next loop iteration, and wakes a sleep. A module asleep in a
// host function is closed by that function's goroutine once it wakes:
// wazero frees the module's resources on close, which the host function
// may still be reading.
func (in *instance) kill(code uint32) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.killed != 0 {
		return
	}
	in.killed = code
	if !in.sleeping {
		_ = in.mod.CloseWithExitCode(context.Background(), code)
	}
	in.stop()
}

// sleep is the instance's WASI sleep under GrantClock: real, but ended by
// kill, so that a module sleeping for an hour cannot hold a call past its
// deadline (wazero's own sleep cannot be interrupted).
func (in *instance) sleep(ns int64) {
	in.mu.Lock()
	if in.killed != 0 {
		in.mu.Unlock()
		return
	}
	in.sleeping = true
	in.mu.Unlock()
	t := time.NewTimer(time.Duration(ns))
	select {
	case <-t.C:
	case <-in.stopped:
	}
	t.Stop()
	in.mu.Lock()
	defer in.mu.Unlock()
	in.sleeping = false
	if in.killed != 0 && in.mod != nil {
		_ = in.mod.CloseWithExitCode(context.Background(), in.killed)
	}
}

// callKey is the context key under which a call's *instance travels to
// husk.log.
type callKey struct{}

// newInstance instantiates m, which runs _initialize, and hands the module
// its configuration through husk_init. It runs under Config.InitTimeout.
func (m *Module) newInstance(ctx context.Context) (*instance, error) {
	ctx, cancel := context.WithTimeout(ctx, m.host.cfg.InitTimeout)
	defer cancel()
	in := &instance{m: m, linear: new(linearMemory), stopped: make(chan struct{}), random: randomSource(m.cfg.Grants)}
	defer context.AfterFunc(ctx, in.stop)() // runs before cancel: only a deadline or the caller stops it
	in.output.max = maxOutputHead
	ctx = context.WithValue(ctx, callKey{}, in)
	ctx = experimental.WithMemoryAllocator(ctx, in.linear.allocator())
	cfg := m.base.WithStdout(&in.output).WithStderr(&in.output)
	if m.cfg.Grants&GrantClock != 0 {
		cfg = cfg.WithNanosleep(in.sleep)
	}
	mod, err := m.rt.InstantiateModule(ctx, m.compiled, cfg)
	if err != nil {
		in.linear.unmap()
		return nil, in.instantiateError(err)
	}
	in.mod = mod
	in.mem = mod.ExportedMemory(ExportMemory)
	in.allocFn = mod.ExportedFunction(ExportAlloc)
	in.decideFn = mod.ExportedFunction(ExportDecide)
	in.initFn = mod.ExportedFunction(ExportInit)
	in.frames, _ = mod.ExportedGlobal(stackExport).(api.MutableGlobal)
	if in.mem == nil || in.allocFn == nil || in.decideFn == nil { // checkABI saw them
		in.close()
		return nil, errorf(m.cfg.Name, "init", ErrABI, "exports missing after instantiation")
	}
	if in.initFn != nil {
		if err := in.callInit(ctx); err != nil {
			in.close()
			return nil, err
		}
	}
	return in, nil
}

// resetFrames starts the frame counter of a call from the host at 0.
func (in *instance) resetFrames() {
	if in.frames != nil {
		in.frames.Set(0)
	}
}

// close closes the instance and returns its memory to the kernel. No call
// may be running in it.
func (in *instance) close() {
	_ = in.mod.Close(context.Background())
	in.linear.unmap()
}

// instantiateError classifies a failure to instantiate: a deadline or exit
// during _initialize as for a call, anything else (a trap in _initialize,
// an import wazero cannot link) as ErrLoad.
func (in *instance) instantiateError(err error) error {
	e := in.fail("init", err).(*Error)
	if e.Kind == ErrTrap {
		e.Kind = ErrLoad
	}
	return e
}

// callInit hands the module its configuration.
func (in *instance) callInit(ctx context.Context) error {
	ptr, err := in.write(ctx, in.m.cfg.Config)
	if err != nil {
		return in.fail("init", err)
	}
	in.stack[0], in.stack[1] = uint64(ptr), uint64(len(in.m.cfg.Config))
	in.q.reset(in.m.cfg.Config)
	in.resetFrames()
	err = in.initFn.CallWithStack(ctx, in.stack[:])
	in.q.reset(nil)
	if err != nil {
		return in.fail("init", err)
	}
	if in.stack[0] == 0 {
		return nil
	}
	msg, err := in.read(in.stack[0], maxInitMessage)
	if err != nil {
		return in.fail("init", err)
	}
	return &Error{Module: in.m.cfg.Name, Op: "init", Kind: ErrInit, Err: errors.New(EscapeText(string(msg)))}
}

// decide is one husk_decide call: point and event are written into one
// buffer from husk_alloc, and the decision is copied out. The calls into
// the module end by deadline or when ctx ends. reusable is false when the
// instance must not serve another call, even though this one completed.
func (in *instance) decide(ctx context.Context, deadline time.Time, point string, event []byte) (out []byte, reusable bool, err error) {
	in.output.reset()
	in.logs = 0
	n := len(point) + len(event)
	if n > int(^uint32(0)>>1) {
		return nil, false, errorf(in.m.cfg.Name, "decide", ErrABI, "input of %d bytes is too large", n)
	}
	ctx, release := in.bound(ctx, deadline)
	ptr, err := in.allocate(ctx, uint32(n))
	if err == nil {
		// Both writes are within the n bytes husk_alloc returned, which
		// allocate checked lie inside memory.
		in.mem.WriteString(ptr, point)
		in.mem.Write(ptr+uint32(len(point)), event)
		in.stack = [4]uint64{uint64(ptr), uint64(len(point)), uint64(ptr) + uint64(len(point)), uint64(len(event))}
		in.q.reset(event)
		in.resetFrames()
		err = in.decideFn.CallWithStack(ctx, in.stack[:])
		in.q.reset(nil)
	}
	reusable = release()
	if err == nil {
		out, err = in.read(in.stack[0], in.m.host.cfg.MaxOutput)
	}
	if err != nil {
		return nil, false, in.fail("decide", err)
	}
	return out, reusable, nil
}

// bound makes the calls into the instance under the returned context stop
// at deadline or when ctx ends: a timer (and, if ctx can end, a callback on
// it) closes the module, which the termination checks compiled into it
// (WithCloseOnContextDone) see at the next loop header. (Handing wazero a
// context with a deadline would do the same, but wazero then starts a
// goroutine per call to watch it.) The returned context carries the
// instance for the host functions and has no deadline.
//
// release stops the watch and reports whether the instance is intact: false
// when the deadline or ctx closed it, even if the call had completed.
func (in *instance) bound(ctx context.Context, deadline time.Time) (context.Context, func() (intact bool)) {
	timer := time.AfterFunc(time.Until(deadline), func() { in.kill(sys.ExitCodeDeadlineExceeded) })
	stop := context.AfterFunc(ctx, func() { in.kill(sys.ExitCodeContextCanceled) })
	callCtx := context.WithValue(context.WithoutCancel(ctx), callKey{}, in)
	return callCtx, func() bool {
		t, c := timer.Stop(), stop()
		return t && c
	}
}

// write copies b into a buffer from husk_alloc and returns its address.
func (in *instance) write(ctx context.Context, b []byte) (uint32, error) {
	ptr, err := in.allocate(ctx, uint32(len(b)))
	if err != nil {
		return 0, err
	}
	in.mem.Write(ptr, b)
	return ptr, nil
}

// allocate calls husk_alloc(n) and checks the buffer lies inside memory.
func (in *instance) allocate(ctx context.Context, n uint32) (uint32, error) {
	in.stack[0] = uint64(n)
	in.resetFrames()
	if err := in.allocFn.CallWithStack(ctx, in.stack[:]); err != nil {
		return 0, err
	}
	ptr := uint32(in.stack[0])
	if ptr == 0 && n > 0 {
		return 0, &Error{Module: in.m.cfg.Name, Kind: ErrABI, Err: fmt.Errorf("%s(%d) returned 0", ExportAlloc, n)}
	}
	if uint64(ptr)+uint64(n) > uint64(in.mem.Size()) {
		return 0, &Error{Module: in.m.cfg.Name, Kind: ErrABI, Err: fmt.Errorf("%s(%d) returned %#x, outside memory (%d bytes)", ExportAlloc, n, ptr, in.mem.Size())}
	}
	return ptr, nil
}

// read copies the buffer packed in v (ptr<<32 | len) out of memory,
// refusing more than limit bytes.
func (in *instance) read(v uint64, limit int) ([]byte, error) {
	ptr, n := unpack(v)
	if int64(n) > int64(limit) {
		return nil, &Error{Module: in.m.cfg.Name, Kind: ErrOutput, Err: fmt.Errorf("%d bytes, limit %d", n, limit)}
	}
	b, ok := in.mem.Read(ptr, n)
	if !ok {
		return nil, &Error{Module: in.m.cfg.Name, Kind: ErrABI, Err: fmt.Errorf("returned buffer %#x+%d is outside memory (%d bytes)", ptr, n, in.mem.Size())}
	}
	return append([]byte(nil), b...), nil
}

// fail turns err, from a call into the instance, into an *Error for op,
// classified and carrying what the module printed.
func (in *instance) fail(op string, err error) error {
	e := &Error{Module: in.m.cfg.Name, Op: op, Output: in.output.String()}
	var own *Error
	var exit *sys.ExitError
	switch {
	case errors.As(err, &own):
		e.Kind, e.Err = own.Kind, own.Err
	case errors.As(err, &exit) && exit.ExitCode() == sys.ExitCodeDeadlineExceeded:
		e.Kind = ErrTimeout
	case errors.As(err, &exit) && exit.ExitCode() == sys.ExitCodeContextCanceled:
		e.Kind, e.Err = ErrTimeout, context.Canceled
	case errors.As(err, &exit):
		e.Kind, e.Err = ErrExit, fmt.Errorf("exit code %d", exit.ExitCode())
	case errors.Is(err, context.DeadlineExceeded):
		e.Kind = ErrTimeout
	default:
		// wazero reports traps as errors whose text is the trap and a stack
		// trace; keep only the first line.
		msg, _, _ := strings.Cut(err.Error(), "\n")
		e.Kind, e.Err = ErrTrap, errors.New(strings.TrimPrefix(msg, "wasm error: "))
		if in.frames != nil && uint32(in.frames.Get()) > MaxStackBytes {
			e.Err = fmt.Errorf("%w: its frames need over %d MiB, husk's limit", errStackExhausted, MaxStackBytes>>20)
		}
	}
	return e
}
