package vsock

import (
	"fmt"

	"github.com/huskrt/husk/vmm/virtio"
)

// handleTX acts on one packet the guest sent.
func (d *Device) handleTX(ch *virtio.Chain) {
	p, err := parseTX(ch, d.cfg.CID)
	if err != nil {
		d.log.Debug("vsock: dropped a packet", "err", err)
		return
	}
	h := p.hdr
	k := connKey{local: h.dstPort, peer: h.srcPort}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	c := d.conns[k]
	if h.typ != typeStream {
		if h.op != opRST {
			if c != nil {
				d.rstLocked(c)
			} else {
				d.rstForLocked(k)
			}
		}
		return
	}
	if c == nil {
		switch h.op {
		case opRequest:
			d.requestLocked(k, h)
		case opRST:
		default:
			d.rstForLocked(k)
		}
		return
	}
	c.peerBufAlloc, c.peerFwdCnt = h.bufAlloc, h.fwdCnt
	c.cond.Broadcast() // the guest's credit may have grown
	if len(c.fromHost) > 0 {
		d.queueLocked(c) // data waiting for that credit
	}
	switch h.op {
	case opResponse:
		if c.state != stateConnecting {
			d.rstLocked(c)
			return
		}
		c.state = stateEstablished
		c.preamble = fmt.Appendf(nil, "OK %d\n", k.local)
		d.startIOLocked(c)
	case opRW:
		if c.state != stateEstablished || c.shutSend || int(h.len) > ConnBuffer-c.buffered() {
			d.rstLocked(c) // data where none may come, or beyond the credit given
			return
		}
		for _, b := range p.payload {
			c.toHost = append(c.toHost, b...)
		}
		c.cond.Broadcast() // the writer
	case opCreditUpdate:
	case opCreditRequest:
		c.ctl |= ctlCreditUpdate
		d.queueLocked(c)
	case opShutdown:
		c.shutSend = c.shutSend || h.flags&shutdownSend != 0
		c.shutRecv = c.shutRecv || h.flags&shutdownRcv != 0
		if c.shutSend && c.shutRecv {
			// The guest closed its socket and waits for our RST. What it
			// sent before is still written to the host by the writer,
			// which closes the socket when done.
			c.ctl |= ctlRST
			d.queueLocked(c)
		}
	case opRST:
		d.removeLocked(c)
	case opRequest:
		d.rstLocked(c) // a second request for a live connection
	default:
		d.rstLocked(c)
	}
}

// requestLocked starts a guest-initiated connection: dial UDSPath_<port>
// in the background, then RESPONSE or RST.
// Preconditions: d.mu is held.
func (d *Device) requestLocked(k connKey, h header) {
	if len(d.conns) >= MaxConns {
		d.rstForLocked(k)
		return
	}
	c := d.newConnLocked(k, stateDialing)
	c.peerBufAlloc, c.peerFwdCnt = h.bufAlloc, h.fwdCnt
	path := fmt.Sprintf("%s_%d", d.cfg.UDSPath, k.local)
	d.wg.Go(func() { d.dial(c, path) })
}

// newConnLocked adds a connection.
// Preconditions: d.mu is held.
func (d *Device) newConnLocked(k connKey, s connState) *conn {
	c := &conn{key: k, state: s}
	c.cond = newCond(&d.mu)
	d.conns[k] = c
	return c
}
