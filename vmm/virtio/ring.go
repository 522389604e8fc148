package virtio

import "fmt"

// Ring flags (virtio 1.2, 2.7.6 and 2.7.8).
const availFNoInterrupt = 1

// Pop returns the next well-formed chain the driver has made available, and
// false when there is none. Malformed chains met on the way are completed
// with used length 0, counted, reported to Config.OnMalformed and skipped.
// At most Size entries are consumed per call, so a guest that keeps
// publishing bad chains cannot hold the device goroutine; the rest are
// seen at the next call.
//
// An error means the queue is broken (see Err): the driver claimed more
// pending entries than the ring holds. Every later call returns it too.
func (q *Queue) Pop() (Chain, bool, error) {
	if q.broken != nil {
		return Chain{}, false, q.broken
	}
	for range q.cfg.Size {
		head, ok, err := q.nextHead()
		if err != nil || !ok {
			return Chain{}, false, err
		}
		c, err := q.walk(head)
		if err == nil {
			q.stats.Chains++
			return c, true, nil
		}
		q.stats.Malformed++
		if q.cfg.OnMalformed != nil {
			q.cfg.OnMalformed(head, err)
		}
		if err := q.Push(head, 0); err != nil {
			return Chain{}, false, err
		}
	}
	return Chain{}, false, nil
}

// Drain serves the chains the driver has made available: each one popped
// is passed to serve, which returns the bytes it wrote into the chain's
// writable buffers, and is completed with that length. It serves at most
// Size chains per call, whatever the driver does meanwhile: a guest that
// keeps publishing entries (from another vCPU, or through a used ring it
// overlapped with the available ring) cannot keep a device goroutine, and
// the queue lock its transport holds around it, forever. A driver never
// has more than Size chains outstanding, and publishes each new one with a
// notification, so nothing a correct driver queued is left behind.
func (q *Queue) Drain(serve func(*Chain) uint32) error {
	for range q.cfg.Size {
		c, ok, err := q.Pop()
		if err != nil || !ok {
			return err
		}
		if err := q.Push(c.Head, serve(&c)); err != nil {
			return err
		}
	}
	return nil
}

// nextHead consumes one available-ring entry and returns the head index the
// driver wrote there, unchecked.
func (q *Queue) nextHead() (uint16, bool, error) {
	// Acquire: the ring entries the index publishes are read after it.
	idx, err := q.mem.LoadUint16Acquire(q.cfg.AvailRing + 2)
	if err != nil {
		return 0, false, q.breakQueue(fmt.Errorf("%w: available index: %w", errRingUnreadable, err))
	}
	pending := idx - q.lastAvail // free-running, wraps at 2^16
	if pending == 0 {
		return 0, false, nil
	}
	if pending > q.cfg.Size {
		return 0, false, q.breakQueue(fmt.Errorf("%w: index %d, last seen %d, size %d", ErrAvailWindow, idx, q.lastAvail, q.cfg.Size))
	}
	slot := uint64(q.lastAvail % q.cfg.Size)
	head, err := q.mem.ReadUint16(q.cfg.AvailRing + ringHeaderSize + 2*slot)
	if err != nil {
		return 0, false, q.breakQueue(fmt.Errorf("%w: available slot %d: %w", errRingUnreadable, slot, err))
	}
	q.lastAvail++
	return head, true, nil
}

// Push completes the chain whose head is head, telling the driver the device
// wrote written bytes into its writable buffers. The used element is
// written before the used index that publishes it (release).
func (q *Queue) Push(head uint16, written uint32) error {
	if q.broken != nil {
		return q.broken
	}
	slot := uint64(q.nextUsed % q.cfg.Size)
	elem := q.cfg.UsedRing + ringHeaderSize + usedElemSize*slot
	if err := q.mem.WriteUint32(elem, uint32(head)); err != nil {
		return q.breakQueue(fmt.Errorf("%w: used slot %d: %w", errRingUnreadable, slot, err))
	}
	if err := q.mem.WriteUint32(elem+4, written); err != nil {
		return q.breakQueue(fmt.Errorf("%w: used slot %d: %w", errRingUnreadable, slot, err))
	}
	q.nextUsed++
	// The device owns the used ring's flags and index, so it writes both
	// as one word; flags stay 0 (notifications wanted).
	if err := q.mem.StoreUint32Release(q.cfg.UsedRing, uint32(q.nextUsed)<<16); err != nil {
		return q.breakQueue(fmt.Errorf("%w: used index: %w", errRingUnreadable, err))
	}
	return nil
}

// NeedsInterrupt reports whether the driver wants an interrupt for the used
// entries pushed so far: it does unless it set VIRTQ_AVAIL_F_NO_INTERRUPT.
// (VIRTIO_F_EVENT_IDX suppression is not implemented.) The flag is a hint;
// a broken queue always asks for one so the driver notices.
func (q *Queue) NeedsInterrupt() bool {
	if q.broken != nil {
		return true
	}
	// Push's atomic store is a full barrier on amd64, so this read is not
	// satisfied before the used index it follows is visible.
	flags, err := q.mem.LoadUint16Acquire(q.cfg.AvailRing)
	return err != nil || flags&availFNoInterrupt == 0
}
