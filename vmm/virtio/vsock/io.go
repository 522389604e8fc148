package vsock

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// dialTimeout bounds connecting to a host process's Unix socket.
const dialTimeout = 2 * time.Second

// readChunk is how much host data one read takes, at most.
const readChunk = 32 << 10

func newCond(l sync.Locker) *sync.Cond { return sync.NewCond(l) }

// dial connects a guest-initiated connection to the host's socket at path
// and answers the guest: RESPONSE, or RST if nobody listens there.
func (d *Device) dial(c *conn, path string) {
	sock, err := net.DialTimeout("unix", path, dialTimeout)
	d.mu.Lock()
	switch {
	case c.closed:
		if sock != nil {
			sock.Close()
		}
	case err != nil:
		d.log.Debug("vsock: guest connection refused", "path", path, "err", err)
		d.rstLocked(c)
	default:
		c.sock, c.state = sock, stateEstablished
		c.ctl |= ctlResponse
		d.queueLocked(c)
		d.startIOLocked(c)
	}
	d.mu.Unlock()
	d.flushRX()
}

// startIOLocked starts the goroutines that move c's data.
// Preconditions: d.mu is held; c is established.
func (d *Device) startIOLocked(c *conn) {
	d.wg.Go(func() { d.reader(c) })
	d.wg.Go(func() { d.writer(c) })
}

// reader moves host data to the guest: it reads only when the previous
// read has gone out and the guest has credit, so it holds at most
// readChunk bytes, and a guest that stops reading stops it.
func (d *Device) reader(c *conn) {
	buf := make([]byte, readChunk)
	for {
		d.mu.Lock()
		for !c.closed && !c.shutRecv && (len(c.fromHost) > 0 || c.credit() == 0) {
			c.cond.Wait()
		}
		if c.closed || c.shutRecv {
			d.mu.Unlock()
			return
		}
		want := min(uint32(len(buf)), c.credit())
		d.mu.Unlock()

		n, err := c.sock.Read(buf[:want])
		d.mu.Lock()
		if c.closed {
			d.mu.Unlock()
			return
		}
		if n > 0 {
			c.fromHost = append(c.fromHost[:0], buf[:n]...)
			d.queueLocked(c)
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				d.rstLocked(c)
			} else if !c.hostEOF {
				// The host closed its side: tell the guest, which answers
				// with RST (or closes and sends SHUTDOWN itself).
				c.hostEOF = true
				c.ctl |= ctlShutdown
				d.queueLocked(c)
			}
			d.mu.Unlock()
			d.flushRX()
			return
		}
		d.mu.Unlock()
		d.flushRX()
	}
}

// writer moves guest data to the host socket, then tells the guest about
// the space it freed (a credit update) when the guest may be waiting.
func (d *Device) writer(c *conn) {
	for {
		d.mu.Lock()
		for !c.closed && len(c.preamble) == 0 && len(c.toHost) == 0 && !c.draining && !c.shutSend {
			c.cond.Wait()
		}
		if c.closed {
			d.mu.Unlock()
			return
		}
		if len(c.preamble) == 0 && len(c.toHost) == 0 {
			if c.draining {
				d.removeLocked(c)
				d.mu.Unlock()
				return
			}
			if c.shutSend {
				if u, ok := c.sock.(*net.UnixConn); ok {
					u.CloseWrite()
				}
				// Nothing more will come from the guest; wait for the end.
				for !c.closed && !c.draining {
					c.cond.Wait()
				}
				if c.draining {
					d.removeLocked(c)
				}
				d.mu.Unlock()
				return
			}
		}
		pre, data := c.preamble, c.toHost
		c.preamble, c.toHost, c.writing = nil, nil, len(data)
		d.mu.Unlock()

		_, err := c.sock.Write(append(pre, data...))
		d.mu.Lock()
		c.writing = 0
		if c.closed {
			d.mu.Unlock()
			return
		}
		if err != nil {
			d.rstLocked(c)
			d.mu.Unlock()
			d.flushRX()
			return
		}
		c.fwdCnt += uint32(len(data))
		// The guest counts our free space from the last fwd_cnt it saw:
		// update it once half the buffer has been freed, or all of it.
		if !c.draining && (c.buffered() == 0 || c.fwdCnt-c.lastFwdCnt >= ConnBuffer/2) && c.fwdCnt != c.lastFwdCnt {
			c.ctl |= ctlCreditUpdate
			d.queueLocked(c)
		}
		d.mu.Unlock()
		d.flushRX()
	}
}
