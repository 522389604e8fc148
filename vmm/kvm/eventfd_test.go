package kvm_test

import (
	"errors"
	"os"
	"testing"
	"time"

	"github.com/huskrt/husk/vmm/kvm"
)

func TestEventFDCloseWakesWait(t *testing.T) {
	e, err := kvm.NewEventFD()
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Signal(); err != nil {
		t.Fatal(err)
	}
	if err := e.Signal(); err != nil {
		t.Fatal(err)
	}
	if n, err := e.Wait(); n != 2 || err != nil {
		t.Fatalf("Wait = %d, %v; want the two signals", n, err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := e.Wait()
		done <- err
	}()
	time.Sleep(10 * time.Millisecond) // let it block
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrClosed) {
			t.Errorf("Wait after Close = %v, want os.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not wake Wait")
	}
	if err := e.Signal(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Signal after Close = %v, want os.ErrClosed", err)
	}
	if err := e.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}
