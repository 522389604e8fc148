package stdio

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/errdefs"
)

// clientFifos makes the three FIFOs as containerd's client does and opens
// its reading ends of stdout and stderr.
func clientFifos(t *testing.T) (Paths, *os.File, *os.File) {
	t.Helper()
	dir := t.TempDir()
	p := Paths{Stdin: filepath.Join(dir, "in"), Stdout: filepath.Join(dir, "out"), Stderr: filepath.Join(dir, "err")}
	for _, f := range []string{p.Stdin, p.Stdout, p.Stderr} {
		if err := syscall.Mkfifo(f, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	open := func(path string, flag int) *os.File {
		f, err := os.OpenFile(path, flag|syscall.O_NONBLOCK, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	out := open(p.Stdout, os.O_RDONLY)
	errf := open(p.Stderr, os.O_RDONLY)
	// Opening a FIFO for writing without a reader fails with ENXIO; the
	// writer is opened after NewPipes has opened the reading end.
	return p, out, errf
}

func TestPipesCopyBothWaysAndEnd(t *testing.T) {
	ctx := context.Background()
	p, out, errf := clientFifos(t)
	x, err := NewPipes(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	in, err := os.OpenFile(p.Stdin, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	// The "process": echo stdin to stdout, write to stderr, exit.
	procIn, procOut, procErr := x.Stdin, x.Stdout, x.Stderr
	if _, err := in.Write([]byte("ping\n")); err != nil {
		t.Fatal(err)
	}
	in.Close() // the client's EOF must become the process's EOF
	got, err := io.ReadAll(procIn)
	if err != nil || string(got) != "ping\n" {
		t.Fatalf("process stdin = %q, %v", got, err)
	}
	procOut.Write([]byte("pong\n"))
	procErr.Write([]byte("oops\n"))
	x.CloseChildEnds() // the process exits

	for _, c := range []struct {
		f    *os.File
		want string
	}{{out, "pong\n"}, {errf, "oops\n"}} {
		b, err := readAllFifo(c.f)
		if err != nil || string(b) != c.want {
			t.Fatalf("client read %q, %v; want %q then EOF", b, err, c.want)
		}
	}
	if err := x.Close(time.Second); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// readAllFifo reads a non-blocking FIFO until EOF.
func readAllFifo(f *os.File) ([]byte, error) {
	var b []byte
	buf := make([]byte, 64)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		n, err := f.Read(buf)
		b = append(b, buf[:n]...)
		switch {
		case err == io.EOF:
			return b, nil
		case errors.Is(err, syscall.EAGAIN) || errors.Is(err, os.ErrDeadlineExceeded):
			time.Sleep(5 * time.Millisecond)
		case err != nil:
			return b, err
		}
	}
	return b, errors.New("no EOF within 5s")
}

func TestFileDestination(t *testing.T) {
	path := filepath.Join(t.TempDir(), "logs", "out.log")
	x, err := NewPipes(context.Background(), Paths{Stdout: "file://" + path})
	if err != nil {
		t.Fatal(err)
	}
	x.Stdout.Write([]byte("to a file\n"))
	x.CloseChildEnds()
	if err := x.Close(time.Second); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil || string(b) != "to a file\n" {
		t.Fatalf("file = %q, %v", b, err)
	}
}

func TestUnsupportedScheme(t *testing.T) {
	_, err := NewPipes(context.Background(), Paths{Stdout: "binary:///usr/bin/logger?x=1"})
	if !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("err = %v, want invalid argument", err)
	}
}

func TestCloseStdinTwice(t *testing.T) {
	p, _, _ := clientFifos(t)
	x, err := NewPipes(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close(0)
	if err := x.CloseStdin(); err != nil {
		t.Fatal(err)
	}
	if err := x.CloseStdin(); err != nil {
		t.Fatalf("second CloseStdin: %v", err)
	}
	if b, err := io.ReadAll(x.Stdin); err != nil || len(b) != 0 {
		t.Fatalf("process stdin after CloseStdin = %q, %v; want EOF", b, err)
	}
}

// TestWaitOutputWaitsForTheClient: after the process's exit, WaitOutput
// returns only once the client has read the last of the output from its
// FIFO, so that a client which stops reading when told of the exit (ctr
// closes its FIFOs in Delete) has it all.
func TestWaitOutputWaitsForTheClient(t *testing.T) {
	p, out, _ := clientFifos(t)
	x, err := NewPipes(context.Background(), Paths{Stdout: p.Stdout})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close(0)
	x.Stdout.Write([]byte("done\n"))
	x.CloseChildEnds() // the process exits
	waited := make(chan error, 1)
	go func() { waited <- x.WaitOutput(10 * time.Second) }()
	select {
	case err := <-waited:
		t.Fatalf("WaitOutput returned (%v) before the client read the output", err)
	case <-time.After(100 * time.Millisecond):
	}
	b, err := readAllFifo(out)
	if err != nil || string(b) != "done\n" {
		t.Fatalf("client read %q, %v; want %q then EOF", b, err, "done\n")
	}
	if err := <-waited; err != nil {
		t.Fatal(err)
	}
}

// TestCloseStdinKeepsWrittenInput: the client writes its whole input to the
// stdin FIFO, closes it and sends CloseIO at once (ctr's order); the
// process still reads all of it, then EOF.
func TestCloseStdinKeepsWrittenInput(t *testing.T) {
	ctx := context.Background()
	p, _, _ := clientFifos(t)
	p.Stdout, p.Stderr = "", ""
	x, err := NewPipes(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close(0)
	in, err := os.OpenFile(p.Stdin, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	// More than a pipe holds (64 KiB): the copier is still copying when
	// CloseIO comes.
	data := bytes.Repeat([]byte("x"), 256<<10)
	go func() { _, _ = in.Write(data); in.Close() }()
	time.Sleep(100 * time.Millisecond)
	if err := x.CloseStdin(); err != nil {
		t.Fatal(err)
	}
	fd, err := syscall.Dup(int(x.Stdin.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	procIn := os.NewFile(uintptr(fd), "process stdin")
	defer procIn.Close()
	x.CloseChildEnds() // as after start
	got, _ := io.ReadAll(procIn)
	if len(got) != len(data) {
		t.Fatalf("process read %d bytes of its %d-byte input", len(got), len(data))
	}
}
