package linux

import (
	"io"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/huskrt/husk/internal/procstatus"
)

// TestAwaitExitHoldsNoThread pins what a running container's exit watch
// costs the shim: no OS thread (a blocking wait held one per container).
// awaitExit returns once the child has exited, and leaves it for the
// owner's wait, which still reads its status.
func TestAwaitExitHoldsNoThread(t *testing.T) {
	const n = 20
	th0 := procstatus.MustThreads(t, 0)
	var cmds []*exec.Cmd
	var stdins []io.WriteCloser
	for i := range n {
		cmd := exec.Command("/bin/sh", "-c", "read x; exit "+strconv.Itoa(i%3))
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { stdin.Close() })
		cmds, stdins = append(cmds, cmd), append(stdins, stdin)
	}
	var wg sync.WaitGroup
	done := make(chan int, n)
	for i, cmd := range cmds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			awaitExit(cmd.Process.Pid)
			done <- i
		}()
	}
	time.Sleep(200 * time.Millisecond)
	if th := procstatus.MustThreads(t, 0) - th0; th > 3 {
		t.Errorf("%d exit watches took %d OS threads, want none each", n, th)
	}
	select {
	case i := <-done:
		t.Fatalf("awaitExit of child %d returned while it runs", i)
	default:
	}
	for _, stdin := range stdins {
		stdin.Close() // the children exit
	}
	wg.Wait()
	for i, cmd := range cmds {
		err := cmd.Wait()
		if code := cmd.ProcessState.ExitCode(); code != i%3 {
			t.Errorf("child %d: exit code %d (%v), want %d: the status must be left for the owner's wait", i, code, err, i%3)
		}
	}
}
