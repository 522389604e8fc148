// Package serial emulates a 16550A UART (8250 family) well enough for
// Linux's 8250 driver: it passes the driver's probe (scratch, IER and
// loopback tests), reports an empty transmitter at all times, writes what
// the guest transmits to an io.Writer and delivers input bytes the host
// queues. Interrupts follow the chip: a transmitter-empty interrupt is
// pending after each transmitted byte and after THRI is enabled, and is
// cleared by reading IIR; received data is pending while the input FIFO
// holds bytes.
package serial

import (
	"io"
	"sync"
)

// Ports of the PC's first serial port and its ISA interrupt.
const (
	COM1Base = 0x3f8
	COM1IRQ  = 4
	Size     = 8 // registers
)

// Register offsets.
const (
	regData = 0 // RBR (read), THR (write), DLL with DLAB
	regIER  = 1 // DLM with DLAB
	regIIR  = 2 // IIR (read), FCR (write)
	regLCR  = 3
	regMCR  = 4
	regLSR  = 5
	regMSR  = 6
	regSCR  = 7
)

// Register bits.
const (
	ierRDI   = 0x01 // received data available
	ierTHRI  = 0x02 // transmitter holding register empty
	iirNone  = 0x01
	iirTHRI  = 0x02
	iirRDI   = 0x04
	iirFIFO  = 0xc0 // FIFOs enabled (16550A)
	fcrFIFO  = 0x01
	lcrDLAB  = 0x80
	mcrDTR   = 0x01
	mcrRTS   = 0x02
	mcrOUT1  = 0x04
	mcrOUT2  = 0x08
	mcrLoop  = 0x10
	lsrDR    = 0x01
	lsrTHRE  = 0x20
	lsrTEMT  = 0x40
	msrCTS   = 0x10
	msrDSR   = 0x20
	msrRI    = 0x40
	msrDCD   = 0x80
	fifoSize = 64 // input bytes held; more are dropped, as on a real UART
)

// UART is one serial port. Its methods are safe for concurrent use.
type UART struct {
	out       io.Writer
	interrupt func() error

	mu       sync.Mutex
	ier      byte   // guarded by mu
	lcr      byte   // guarded by mu
	mcr      byte   // guarded by mu
	scr      byte   // guarded by mu
	dll, dlm byte   // guarded by mu
	fifo     bool   // FIFOs enabled; guarded by mu
	thrEmpty bool   // transmitter-empty interrupt pending; guarded by mu
	in       []byte // received, not yet read; guarded by mu
	outErr   error  // the first error from out; guarded by mu
}

// New returns a UART that writes transmitted bytes to out and calls
// interrupt to raise its interrupt line (an edge; nil for none).
func New(out io.Writer, interrupt func() error) *UART {
	if out == nil {
		out = io.Discard
	}
	if interrupt == nil {
		interrupt = func() error { return nil }
	}
	return &UART{out: out, interrupt: interrupt, dll: 12} // 9600 baud, as after reset
}

// Read implements bus.Device.
func (u *UART) Read(offset uint64, data []byte) {
	if len(data) != 1 {
		fill(data, 0xff)
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	data[0] = u.readLocked(offset)
}

func (u *UART) readLocked(offset uint64) byte {
	dlab := u.lcr&lcrDLAB != 0
	switch offset {
	case regData:
		if dlab {
			return u.dll
		}
		if len(u.in) == 0 {
			return 0
		}
		b := u.in[0]
		u.in = u.in[1:]
		return b
	case regIER:
		if dlab {
			return u.dlm
		}
		return u.ier
	case regIIR:
		return u.iirLocked(true)
	case regLCR:
		return u.lcr
	case regMCR:
		return u.mcr
	case regLSR:
		lsr := byte(lsrTHRE | lsrTEMT) // the host takes every byte at once
		if len(u.in) > 0 {
			lsr |= lsrDR
		}
		return lsr
	case regMSR:
		if u.mcr&mcrLoop != 0 {
			// Loopback: the modem outputs come back as its inputs.
			var m byte
			if u.mcr&mcrRTS != 0 {
				m |= msrCTS
			}
			if u.mcr&mcrDTR != 0 {
				m |= msrDSR
			}
			if u.mcr&mcrOUT1 != 0 {
				m |= msrRI
			}
			if u.mcr&mcrOUT2 != 0 {
				m |= msrDCD
			}
			return m
		}
		return msrDCD | msrDSR | msrCTS // a terminal is always there
	case regSCR:
		return u.scr
	}
	return 0xff
}

// iirLocked returns the highest-priority pending interrupt. Reading IIR
// (consume) acknowledges a transmitter-empty interrupt.
func (u *UART) iirLocked(consume bool) byte {
	iir := byte(iirNone)
	switch {
	case u.ier&ierRDI != 0 && len(u.in) > 0:
		iir = iirRDI
	case u.ier&ierTHRI != 0 && u.thrEmpty:
		iir = iirTHRI
		if consume {
			u.thrEmpty = false
		}
	}
	if u.fifo {
		iir |= iirFIFO
	}
	return iir
}

// Write implements bus.Device. It never fails: an error writing to the
// host's output is remembered (Err) and the byte is lost, as on a line
// nobody listens to.
func (u *UART) Write(offset uint64, data []byte) error {
	if len(data) != 1 {
		return nil
	}
	u.mu.Lock()
	irq := u.writeLocked(offset, data[0])
	u.mu.Unlock()
	if irq {
		return u.interrupt()
	}
	return nil
}

// writeLocked applies a register write and reports whether the interrupt
// line must be raised.
func (u *UART) writeLocked(offset uint64, v byte) bool {
	dlab := u.lcr&lcrDLAB != 0
	switch offset {
	case regData:
		if dlab {
			u.dll = v
			return false
		}
		if u.mcr&mcrLoop != 0 {
			u.pushLocked([]byte{v})
		} else if _, err := u.out.Write([]byte{v}); err != nil && u.outErr == nil {
			u.outErr = err
		}
		u.thrEmpty = true
		return u.ier&ierTHRI != 0 || u.ier&ierRDI != 0 && len(u.in) > 0
	case regIER:
		if dlab {
			u.dlm = v
			return false
		}
		enabled := v &^ u.ier
		u.ier = v & 0x0f
		if enabled&ierTHRI != 0 {
			u.thrEmpty = true // the transmitter is empty: say so at once
		}
		return u.iirLocked(false)&iirNone == 0
	case regIIR:
		u.fifo = v&fcrFIFO != 0
	case regLCR:
		u.lcr = v
	case regMCR:
		u.mcr = v & 0x1f
	case regSCR:
		u.scr = v
	}
	return false
}

// Input queues bytes for the guest to read, dropping what does not fit in
// the FIFO, and raises the interrupt if the guest asked for it.
func (u *UART) Input(p []byte) error {
	u.mu.Lock()
	u.pushLocked(p)
	irq := u.ier&ierRDI != 0 && len(u.in) > 0
	u.mu.Unlock()
	if irq {
		return u.interrupt()
	}
	return nil
}

func (u *UART) pushLocked(p []byte) {
	n := min(len(p), fifoSize-len(u.in))
	u.in = append(u.in, p[:n]...)
}

// Err returns the first error the output writer returned.
func (u *UART) Err() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.outErr
}

func fill(b []byte, v byte) {
	for i := range b {
		b[i] = v
	}
}
