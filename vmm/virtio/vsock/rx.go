package vsock

import "github.com/huskrt/husk/vmm/virtio"

// flushRX sends what the device owes the guest (resets, control packets,
// host data) into the receive buffers the guest has posted, until either
// runs out (at most a queue's worth per call).
func (d *Device) flushRX() {
	qs := d.qs.Load()
	if qs == nil {
		return
	}
	(*qs).Do(rxQueue, func(q *virtio.Queue) {
		for range q.Size() {
			d.mu.Lock()
			more := d.hasRXLocked()
			d.mu.Unlock()
			if !more {
				return
			}
			c, ok, err := q.Pop()
			if err != nil || !ok {
				return
			}
			d.mu.Lock()
			n := d.fillLocked(&c)
			d.mu.Unlock()
			if err := q.Push(c.Head, n); err != nil {
				return
			}
		}
	})
}

// hasRXLocked reports whether anything is owed to the guest.
// Preconditions: d.mu is held.
func (d *Device) hasRXLocked() bool {
	if len(d.rsts) > 0 {
		return true
	}
	for len(d.ready) > 0 {
		c := d.ready[0]
		if _, _, commit := d.nextLocked(c); commit != nil {
			return true
		}
		c.queued = false
		d.ready = d.ready[1:]
	}
	return false
}

func (d *Device) canSendData(c *conn) bool {
	return c.state == stateEstablished && len(c.fromHost) > 0 && !c.shutRecv && c.credit() > 0
}

// fillLocked writes the next packet owed into a receive chain and returns
// the used length. A chain too small for a header gets nothing (length 0)
// and the packet stays owed.
// Preconditions: d.mu is held.
func (d *Device) fillLocked(ch *virtio.Chain) uint32 {
	if len(d.rsts) > 0 {
		n, _, ok := writeRX(ch, d.rsts[0], nil)
		if ok {
			d.rsts = d.rsts[1:]
		}
		return n
	}
	for len(d.ready) > 0 {
		c := d.ready[0]
		h, payload, commit := d.nextLocked(c)
		if commit == nil {
			c.queued = false
			d.ready = d.ready[1:]
			continue
		}
		h.fwdCnt = c.fwdCnt
		n, sent, ok := writeRX(ch, h, payload)
		if !ok {
			return 0
		}
		c.lastFwdCnt = c.fwdCnt
		commit(sent)
		// Round robin: a connection with more to send goes to the back.
		if len(d.ready) > 0 && d.ready[0] == c {
			d.ready = append(d.ready[1:], c)
		}
		return n
	}
	return 0
}

// nextLocked returns c's next packet and the function that records it as
// sent, or a nil commit when c owes nothing now.
// Preconditions: d.mu is held.
func (d *Device) nextLocked(c *conn) (header, []byte, func(int)) {
	if c.closed {
		return header{}, nil, nil
	}
	for _, ctl := range []struct {
		bit int
		op  uint16
	}{
		{ctlRequest, opRequest},
		{ctlResponse, opResponse},
		{ctlCreditUpdate, opCreditUpdate},
	} {
		if c.ctl&ctl.bit != 0 {
			return d.header(c.key, ctl.op, 0), nil, func(int) { c.ctl &^= ctl.bit }
		}
	}
	if d.canSendData(c) {
		chunk := c.fromHost[:min(uint32(len(c.fromHost)), c.credit(), maxPayload)]
		return d.header(c.key, opRW, 0), chunk, func(n int) {
			c.fromHost = c.fromHost[n:]
			c.txCnt += uint32(n)
			if len(c.fromHost) == 0 {
				c.cond.Broadcast() // the reader may read again
			}
		}
	}
	// The host's end of the stream goes after its last data.
	if c.ctl&ctlShutdown != 0 && (len(c.fromHost) == 0 || c.shutRecv) {
		return d.header(c.key, opShutdown, shutdownRcv|shutdownSend), nil, func(int) { c.ctl &^= ctlShutdown }
	}
	if c.ctl&ctlRST != 0 {
		return d.header(c.key, opRST, 0), nil, func(int) {
			c.ctl &^= ctlRST
			d.finishLocked(c)
		}
	}
	return header{}, nil, nil
}

// finishLocked ends a connection the guest is done with: it leaves the
// table at once, and its socket closes as soon as the guest's last data
// has been written to the host.
// Preconditions: d.mu is held.
func (d *Device) finishLocked(c *conn) {
	if c.buffered() == 0 || c.sock == nil {
		d.removeLocked(c)
		return
	}
	delete(d.conns, c.key)
	c.draining, c.shutRecv = true, true
	c.cond.Broadcast()
}
