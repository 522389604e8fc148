// Package stdio connects a process's standard streams to the destinations
// containerd names for them: FIFOs (ctr, CRI) or file:// URIs. Output is
// copied through pipes (or a pty master) by goroutines that end, and close
// their destination, when the process side reaches EOF.
package stdio

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	"github.com/containerd/fifo"
	"golang.org/x/sys/unix"
)

// copyBufSize is the buffer of each copier (containerd uses 32 KiB too).
const copyBufSize = 32 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

// Paths are containerd's names for the three streams; empty means none.
type Paths struct {
	Stdin, Stdout, Stderr string
}

// IO is the host side of a process's standard streams.
type IO struct {
	// Stdin, Stdout and Stderr are the ends the process gets; nil means
	// /dev/null. CloseChildEnds closes the host's copies after start.
	Stdin  *os.File
	Stdout *os.File
	Stderr *os.File

	terminal bool // the process has a pty: stdinW is its master

	mu     sync.Mutex
	stdinW io.WriteCloser // our end of the stdin pipe or the pty master; guarded by mu
	// The stdin copier's state, for CloseStdin: it runs (reading
	// stdinSrc), is writing to the process, last read at lastRead; and
	// CloseStdin asked it to close. All guarded by mu.
	copying, writing, closeAsked bool
	lastRead                     time.Time
	stdinSrc                     io.Closer
	closers                      []io.Closer    // everything to release at Close
	copies                       sync.WaitGroup // output copiers
}

// OpenDest opens an output destination: a FIFO path, a file:// URI, or a
// stream:<name> of the context's Streams.
func OpenDest(ctx context.Context, dest string) (io.WriteCloser, error) {
	if c, ok, err := stream(ctx, dest); ok {
		return c, err
	}
	u, err := url.Parse(dest)
	if err == nil && u.Scheme != "" {
		switch u.Scheme {
		case "file":
			if err := os.MkdirAll(dirOf(u.Path), 0o755); err != nil {
				return nil, err
			}
			return os.OpenFile(u.Path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
		case "fifo":
			dest = u.Path
		default:
			return nil, fmt.Errorf("stdio destination %q: scheme %q is not supported yet: %w", dest, u.Scheme, errdefs.ErrInvalidArgument)
		}
	}
	f, err := fifo.OpenFifo(ctx, dest, syscall.O_WRONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("opening stdio fifo %s: %w", dest, err)
	}
	return f, nil
}

func dirOf(p string) string {
	for i := len(p) - 1; i > 0; i-- {
		if p[i] == '/' {
			return p[:i]
		}
	}
	return "/"
}

// openStdin opens the stdin FIFO for reading without waiting for a writer,
// or takes the stream:<name> of the context's Streams.
func openStdin(ctx context.Context, path string) (io.ReadCloser, error) {
	if c, ok, err := stream(ctx, path); ok {
		return c, err
	}
	r, err := openFifoReader(path)
	if err != nil {
		return nil, fmt.Errorf("opening stdin fifo %s: %w", path, err)
	}
	return r, nil
}

// openFifoReader opens the FIFO at path for reading at once, with no
// thread waiting for a writer. A blocking open(2) of a FIFO waits for its
// first writer inside the kernel, and a Go goroutine in a system call holds
// an OS thread: containerd/fifo's "non-blocking" open does exactly that in
// a goroutine of its own, so every container whose client never opened its
// stdin (ctr run -d, a CRI container started detached) kept a thread, its
// signal stack and two goroutines for its whole life. Opened O_NONBLOCK,
// the FIFO is the netpoller's. Before any writer, read(2) answers 0, which
// is not EOF yet, so the reader holds a writing end of its own (as the runc
// shim does) until the client's first bytes arrive; then it lets go, and
// the client's close is EOF. A client that closes without writing is
// ended by CloseStdin (containerd's clients send CloseIO). A path that is
// not a FIFO is read as it is.
func openFifoReader(path string) (io.ReadCloser, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFIFO {
		if err := unix.SetNonblock(fd, false); err != nil {
			unix.Close(fd)
			return nil, err
		}
		return os.NewFile(uintptr(fd), path), nil
	}
	// The reading end is open, so this open does not wait either.
	wfd, err := unix.Open(fmt.Sprintf("/proc/self/fd/%d", fd), unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return &fifoReader{f: os.NewFile(uintptr(fd), path), own: wfd}, nil
}

// fifoReader reads a FIFO opened O_NONBLOCK (openFifoReader).
type fifoReader struct {
	f *os.File

	mu  sync.Mutex
	own int // the reader's own writing end until the client's first bytes; -1 after; guarded by mu
}

func (r *fifoReader) Read(b []byte) (int, error) {
	n, err := r.f.Read(b)
	if n > 0 {
		r.dropOwn()
	}
	return n, err
}

// dropOwn closes the reader's own writing end: from now on the client's
// close is EOF.
func (r *fifoReader) dropOwn() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.own >= 0 {
		unix.Close(r.own)
		r.own = -1
	}
}

func (r *fifoReader) Close() error {
	r.dropOwn()
	return r.f.Close()
}

// NewPipes connects p through pipes, for a process without a terminal.
func NewPipes(ctx context.Context, p Paths) (_ *IO, retErr error) {
	x := &IO{}
	defer func() {
		if retErr != nil {
			x.CloseChildEnds()
			x.closeAll()
		}
	}()
	if p.Stdin != "" {
		r, w, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		x.Stdin, x.stdinW = r, w
		x.closers = append(x.closers, w)
		// EOF from the client is EOF for the process.
		if err := x.pumpStdin(ctx, p.Stdin, true); err != nil {
			return nil, err
		}
	}
	for _, s := range []struct {
		dest  string
		child **os.File
	}{{p.Stdout, &x.Stdout}, {p.Stderr, &x.Stderr}} {
		if s.dest == "" {
			continue
		}
		r, w, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		*s.child = w
		x.closers = append(x.closers, r)
		if err := x.pumpOut(ctx, s.dest, r); err != nil {
			return nil, err
		}
	}
	return x, nil
}

// NewConsole connects p to a pty master received from the container: stdin
// is written to it, and everything read from it goes to stdout (a terminal
// merges stderr into stdout).
func NewConsole(ctx context.Context, master *os.File, p Paths) (_ *IO, retErr error) {
	x := &IO{stdinW: master, terminal: true}
	x.closers = append(x.closers, master)
	defer func() {
		if retErr != nil {
			x.closeAll()
		}
	}()
	if p.Stdin != "" {
		// A terminal stays open when the client's stdin ends, as with
		// runc, until CloseStdin.
		if err := x.pumpStdin(ctx, p.Stdin, false); err != nil {
			return nil, err
		}
	}
	if p.Stdout != "" {
		if err := x.pumpOut(ctx, p.Stdout, master); err != nil {
			return nil, err
		}
	}
	return x, nil
}

// pumpStdin copies the stdin FIFO at path into the process; closeAtEOF
// closes the process's stdin when the client closes its end.
func (x *IO) pumpStdin(ctx context.Context, path string, closeAtEOF bool) error {
	src, err := openStdin(ctx, path)
	if err != nil {
		return err
	}
	x.closers = append(x.closers, src)
	x.mu.Lock()
	x.copying, x.stdinSrc, x.lastRead = true, src, time.Now()
	x.mu.Unlock()
	go x.copyStdin(src, closeAtEOF)
	return nil
}

// pumpOut copies src to the destination dest until src reaches EOF.
func (x *IO) pumpOut(ctx context.Context, dest string, src io.Reader) error {
	dst, err := OpenDest(ctx, dest)
	if err != nil {
		return err
	}
	x.copyOut(dst, src)
	return nil
}

func (x *IO) copyStdin(src io.Reader, closeAtEOF bool) {
	x.mu.Lock()
	w := x.stdinW
	x.mu.Unlock()
	if w == nil {
		return
	}
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			x.mu.Lock()
			x.writing, x.lastRead = true, time.Now()
			x.mu.Unlock()
			_, werr := w.Write(buf[:n])
			x.mu.Lock()
			x.writing = false
			x.mu.Unlock()
			if werr != nil {
				break
			}
		}
		if rerr != nil {
			break
		}
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.copying = false
	if closeAtEOF || x.closeAsked {
		_ = x.closeStdinLocked()
	}
}

// stdinQuiet is how long the stdin copier must have read nothing before a
// CloseStdin that waits for it stops it.
const stdinQuiet = 200 * time.Millisecond

// closeWhenQuiet stops the stdin copier once it has read nothing for
// stdinQuiet and is not writing (the client keeps its end open but has
// nothing more to say): the copier then closes the process's stdin.
func (x *IO) closeWhenQuiet() {
	for {
		time.Sleep(stdinQuiet / 4)
		x.mu.Lock()
		switch {
		case !x.copying:
			x.mu.Unlock()
			return
		case !x.writing && time.Since(x.lastRead) >= stdinQuiet:
			_ = x.stdinSrc.Close() // the copier's read fails: it closes
			x.mu.Unlock()
			return
		}
		x.mu.Unlock()
	}
}

func (x *IO) copyOut(dst io.WriteCloser, src io.Reader) {
	x.copies.Add(1)
	go func() {
		defer x.copies.Done()
		defer dst.Close()
		bp := bufPool.Get().(*[]byte)
		defer bufPool.Put(bp)
		// A read error ends the copy like EOF: a pty master reports EIO
		// once the last slave is closed.
		// readerOnly: an *os.File source is an io.WriterTo, which
		// CopyBuffer would prefer, and whose fallback allocates a buffer of
		// its own for the copier's whole life; the pooled one does.
		_, _ = io.CopyBuffer(dst, readerOnly{src}, *bp)
		awaitRead(dst, drainGrace)
	}()
}

// readerOnly hides everything of a reader but Read.
type readerOnly struct{ io.Reader }

// CloseChildEnds closes the host's copies of the ends given to the process,
// so that copiers see EOF when the process (and its children) exit. Call it
// once the process has started (or failed to).
func (x *IO) CloseChildEnds() {
	for _, f := range []*os.File{x.Stdin, x.Stdout, x.Stderr} {
		if f != nil {
			f.Close()
		}
	}
}

// CloseStdin closes the process's standard input (CloseIO) — after what
// the client wrote to the stdin FIFO has been copied in: ctr closes its end
// of the FIFO and sends CloseIO straight after, and closing at once lost
// what the copier had not moved yet. While the copier runs, it is left to
// close the process's stdin: at the client's EOF, or once it has had
// nothing to read for stdinQuiet (a client that keeps its end open).
func (x *IO) CloseStdin() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.copying {
		if !x.closeAsked {
			x.closeAsked = true
			go x.closeWhenQuiet()
		}
		return nil
	}
	return x.closeStdinLocked()
}

func (x *IO) closeStdinLocked() error {
	w := x.stdinW
	if w == nil {
		return nil
	}
	x.stdinW = nil
	if x.terminal {
		// On a terminal, EOF is the EOT character; closing the master
		// would hang up the whole session.
		_, err := w.Write([]byte{4})
		return err
	}
	return w.Close()
}

// WaitOutput waits up to grace for the output to be copied out: for the
// process side to reach EOF and the client to read what was written to its
// FIFO (see awaitRead). Report a process's exit only after: a client may
// stop reading once it knows (ctr's Delete closes its FIFOs).
func (x *IO) WaitOutput(grace time.Duration) error {
	done := make(chan struct{})
	go func() { x.copies.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-time.After(grace):
		return errors.New("process output still open after its exit (a child holds it?)")
	}
}

// Close waits up to grace for the output to be copied out, then releases
// everything.
func (x *IO) Close(grace time.Duration) error {
	err := x.WaitOutput(grace)
	if err != nil {
		err = fmt.Errorf("%w; closing it", err)
	}
	x.closeAll()
	return err
}

func (x *IO) closeAll() {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, c := range x.closers {
		_ = c.Close()
	}
	x.closers = nil
	x.stdinW = nil
}
