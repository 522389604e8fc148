package stdio

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/huskrt/husk/internal/procstatus"
)

// TestStdinWithoutWriterHoldsNoThread pins what an idle container's stdin
// costs the shim: a stdin FIFO whose client never opens it (ctr run -d)
// takes one goroutine (the copier) and no OS thread. containerd/fifo's
// open held a thread blocked in open(2), and two goroutines more, per
// container for its whole life.
func TestStdinWithoutWriterHoldsNoThread(t *testing.T) {
	const n = 20
	ctx := context.Background()
	dir := t.TempDir()
	g0, th0 := runtime.NumGoroutine(), procstatus.MustThreads(t, 0)
	var xs []*IO
	for i := range n {
		p := Paths{Stdin: filepath.Join(dir, "in"+strconv.Itoa(i))}
		if err := syscall.Mkfifo(p.Stdin, 0o600); err != nil {
			t.Fatal(err)
		}
		x, err := NewPipes(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		xs = append(xs, x)
	}
	time.Sleep(100 * time.Millisecond) // let any open(2) block
	g, th := runtime.NumGoroutine()-g0, procstatus.MustThreads(t, 0)-th0
	if g > n+2 {
		t.Errorf("%d stdin FIFOs without a writer took %d goroutines, want one each", n, g)
	}
	if th > 3 {
		t.Errorf("%d stdin FIFOs without a writer took %d OS threads, want none each", n, th)
	}
	for _, x := range xs {
		x.CloseChildEnds()
		if err := x.Close(time.Second); err != nil {
			t.Fatal(err)
		}
	}
}

// TestStdinFifoWriterLater: before the client opens its end, the process
// sees neither input nor EOF; what the client writes then arrives, and its
// close is the process's EOF. A client that writes nothing ends the input
// with CloseIO.
func TestStdinFifoWriterLater(t *testing.T) {
	for _, write := range []string{"hello\n", ""} {
		ctx := context.Background()
		p := Paths{Stdin: filepath.Join(t.TempDir(), "in")}
		if err := syscall.Mkfifo(p.Stdin, 0o600); err != nil {
			t.Fatal(err)
		}
		x, err := NewPipes(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if err := x.Stdin.SetReadDeadline(time.Now().Add(200 * time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		if n, err := x.Stdin.Read(make([]byte, 16)); !os.IsTimeout(err) {
			t.Fatalf("process stdin before any writer: %d bytes, %v; want nothing yet", n, err)
		}
		if err := x.Stdin.SetReadDeadline(time.Time{}); err != nil {
			t.Fatal(err)
		}
		in, err := os.OpenFile(p.Stdin, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if write != "" {
			if _, err := in.Write([]byte(write)); err != nil {
				t.Fatal(err)
			}
		}
		in.Close()
		if write == "" {
			// No bytes came: the reader still holds its own writing end,
			// and the client's CloseIO ends the input, as with runc.
			if err := x.CloseStdin(); err != nil {
				t.Fatal(err)
			}
		}
		got, err := io.ReadAll(x.Stdin)
		if err != nil || string(got) != write {
			t.Errorf("process stdin = %q, %v; want %q then EOF", got, err, write)
		}
		x.CloseChildEnds()
		if err := x.Close(time.Second); err != nil {
			t.Fatal(err)
		}
	}
}

// TestStdinNotAFifo: a stdin path that is a regular file is read as it is.
func TestStdinNotAFifo(t *testing.T) {
	path := filepath.Join(t.TempDir(), "in")
	if err := os.WriteFile(path, []byte("file input"), 0o600); err != nil {
		t.Fatal(err)
	}
	x, err := NewPipes(context.Background(), Paths{Stdin: path})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(x.Stdin)
	if err != nil || string(got) != "file input" {
		t.Errorf("process stdin = %q, %v", got, err)
	}
	x.CloseChildEnds()
	if err := x.Close(time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := NewPipes(context.Background(), Paths{Stdin: path + ".missing"}); err == nil {
		t.Error("a missing stdin FIFO: no error")
	}
}
