package serial

import (
	"bytes"
	"errors"
	"testing"
)

type fixture struct {
	u    *UART
	out  bytes.Buffer
	irqs int
}

func newFixture() *fixture {
	f := &fixture{}
	f.u = New(&f.out, func() error { f.irqs++; return nil })
	return f
}

func (f *fixture) in(off uint64) byte {
	var b [1]byte
	f.u.Read(off, b[:])
	return b[0]
}

func (f *fixture) outb(off uint64, v byte) {
	if err := f.u.Write(off, []byte{v}); err != nil {
		panic(err)
	}
}

// TestLinuxProbe replays the checks of Linux's 8250 autoconfig and
// startup: a UART that fails them is not registered, or its output stalls.
func TestLinuxProbe(t *testing.T) {
	f := newFixture()
	// Scratch register.
	f.outb(regSCR, 0xa5)
	if got := f.in(regSCR); got != 0xa5 {
		t.Errorf("scratch = %#x", got)
	}
	// IER test: 0 reads back 0, 0x0f reads back 0x0f.
	f.outb(regIER, 0)
	if got := f.in(regIER) & 0x0f; got != 0 {
		t.Errorf("IER after 0 = %#x", got)
	}
	f.outb(regIER, 0x0f)
	if got := f.in(regIER) & 0x0f; got != 0x0f {
		t.Errorf("IER after 0x0f = %#x", got)
	}
	f.outb(regIER, 0)
	// Loopback: MCR = LOOP|OUT2|RTS must read MSR 0x90 in the top nibble.
	f.outb(regMCR, mcrLoop|0x0a)
	if got := f.in(regMSR) & 0xf0; got != 0x90 {
		t.Errorf("loopback MSR = %#x, want 0x90", got)
	}
	// Loopback echoes transmitted bytes to the receiver, not to the host.
	f.outb(regData, 'L')
	if f.in(regLSR)&lsrDR == 0 || f.in(regData) != 'L' || f.out.Len() != 0 {
		t.Errorf("loopback byte not echoed (host saw %q)", f.out.String())
	}
	f.outb(regMCR, mcrOUT2|mcrRTS|mcrDTR)
	// FIFO detection: IIR bits 7-6 say 16550A once FCR enables the FIFO.
	f.outb(regIIR, fcrFIFO)
	if got := f.in(regIIR) >> 6; got != 3 {
		t.Errorf("IIR FIFO bits = %d, want 3", got)
	}
	// THRE test at startup: enabling THRI makes IIR report it, twice.
	for i := range 2 {
		f.outb(regIER, ierTHRI)
		if got := f.in(regIIR) & 0x0f; got != iirTHRI {
			t.Errorf("IIR after enabling THRI (%d) = %#x, want THRI", i, got)
		}
		f.outb(regIER, 0)
	}
	// The transmitter is always empty.
	if got := f.in(regLSR); got&(lsrTHRE|lsrTEMT) != lsrTHRE|lsrTEMT {
		t.Errorf("LSR = %#x", got)
	}
}

func TestTransmitAndInterrupts(t *testing.T) {
	f := newFixture()
	f.outb(regData, 'h') // THRI disabled: no interrupt
	if f.irqs != 0 {
		t.Errorf("%d interrupts with IER 0", f.irqs)
	}
	f.outb(regIER, ierTHRI)
	if f.irqs != 1 {
		t.Errorf("enabling THRI raised %d interrupts, want 1", f.irqs)
	}
	if got := f.in(regIIR); got != iirTHRI {
		t.Errorf("IIR = %#x, want THRI", got)
	}
	if got := f.in(regIIR); got != iirNone {
		t.Errorf("IIR after reading it = %#x, want none pending", got)
	}
	f.outb(regData, 'i')
	if f.irqs != 2 || f.in(regIIR) != iirTHRI {
		t.Errorf("after a byte with THRI: %d interrupts", f.irqs)
	}
	if f.out.String() != "hi" {
		t.Errorf("host got %q", f.out.String())
	}
}

func TestReceive(t *testing.T) {
	f := newFixture()
	f.u.Input([]byte("ab"))
	if f.irqs != 0 {
		t.Error("interrupt without RDI enabled")
	}
	f.outb(regIER, ierRDI) // pending data: raise at once
	if f.irqs != 1 {
		t.Errorf("enabling RDI with data pending raised %d interrupts", f.irqs)
	}
	if got := f.in(regIIR); got != iirRDI {
		t.Errorf("IIR = %#x, want RDI", got)
	}
	if f.in(regData) != 'a' || f.in(regData) != 'b' {
		t.Error("bytes out of order")
	}
	if f.in(regLSR)&lsrDR != 0 || f.in(regIIR) != iirNone {
		t.Error("data still pending after reading it all")
	}
	f.u.Input(bytes.Repeat([]byte{'x'}, 1000))
	n := 0
	for f.in(regLSR)&lsrDR != 0 {
		f.in(regData)
		n++
	}
	if n != fifoSize {
		t.Errorf("read %d bytes of a 1000-byte burst, want the FIFO's %d", n, fifoSize)
	}
}

func TestDivisorLatch(t *testing.T) {
	f := newFixture()
	f.outb(regLCR, lcrDLAB|0x03)
	f.outb(regData, 1)
	f.outb(regIER, 0)
	if f.in(regData) != 1 || f.in(regIER) != 0 {
		t.Error("divisor latch did not read back")
	}
	f.outb(regLCR, 0x03)
	if f.in(regIER) != 0 || f.out.Len() != 0 {
		t.Error("divisor writes leaked into IER or the output")
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }

func TestOutputErrorsDoNotStopTheGuest(t *testing.T) {
	u := New(failingWriter{}, nil)
	for range 3 {
		if err := u.Write(regData, []byte{'x'}); err != nil {
			t.Fatalf("Write = %v", err)
		}
	}
	if u.Err() == nil {
		t.Error("output error not remembered")
	}
}

func TestWideAccessesAreIgnored(t *testing.T) {
	f := newFixture()
	b := []byte{1, 2}
	f.u.Read(0, b)
	if b[0] != 0xff || b[1] != 0xff {
		t.Errorf("2-byte read = % x", b)
	}
	if err := f.u.Write(0, []byte{'a', 'b'}); err != nil || f.out.Len() != 0 {
		t.Errorf("2-byte write reached the output: %q, %v", f.out.String(), err)
	}
}
