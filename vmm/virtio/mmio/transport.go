// Package mmio is the virtio-mmio version 2 transport (virtio 1.2, 4.2):
// the register window through which a driver discovers a device,
// negotiates features, places its queues and signals them. Queue
// notifications arrive on one eventfd per queue, which the VMM registers as
// a KVM ioeventfd so that a notifying vCPU never leaves the kernel; the
// transport's goroutine for that queue passes them to the device. Interrupts
// leave through one function, which the VMM backs with an irqfd.
//
// A device whose configuration can change under a running driver
// (virtio.ConfigNotifier) is given a function that bumps ConfigGeneration
// and, while the driver has the device running (DRIVER_OK), raises a
// configuration-change interrupt.
//
// Every register value is hostile. A queue is only made live once package
// virtio has validated its placement; a driver that does something the
// transport cannot honour gets DEVICE_NEEDS_RESET, never a VMM error.
package mmio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/huskrt/husk/vmm/kvm"
	"github.com/huskrt/husk/vmm/memory"
	"github.com/huskrt/husk/vmm/virtio"
)

// WindowSize is the size of a device's register window.
const WindowSize = 0x1000

// Config describes one transport.
type Config struct {
	Mem    *memory.Memory
	Device virtio.Device
	// Interrupt raises the device's interrupt (one edge).
	Interrupt func() error
	// Log receives driver errors (malformed chains, bad queues); nil
	// discards them.
	Log *slog.Logger
}

// Transport is one virtio-mmio device window. Read and Write implement
// bus.Device and may be called from any vCPU.
type Transport struct {
	mem       *memory.Memory
	dev       virtio.Device
	interrupt func() error
	log       *slog.Logger
	queues    []*queue
	wg        sync.WaitGroup // the queues' notification goroutines

	intStatus atomic.Uint32
	status    atomic.Uint32 // written under mu, read by the queue goroutines
	// configGen is ConfigGeneration: bumped by the device's configuration
	// changes (configChanged), from any goroutine.
	configGen atomic.Uint32

	mu          sync.Mutex
	devFeatSel  uint32 // guarded by mu
	drvFeatSel  uint32 // guarded by mu
	drvFeatures uint64 // guarded by mu
	queueSel    uint32 // guarded by mu
}

// queue is one virtqueue's driver-side configuration and, once ready, the
// validated queue.
type queue struct {
	max    uint16
	notify *kvm.EventFD

	// Configuration registers, guarded by Transport.mu.
	size                 uint16
	ready                bool
	desc, driver, device uint64

	mu sync.Mutex
	vq *virtio.Queue // nil unless live; guarded by mu
}

// New creates the transport and starts one goroutine per queue waiting for
// notifications. Close stops them.
func New(cfg Config) (*Transport, error) {
	t := &Transport{mem: cfg.Mem, dev: cfg.Device, interrupt: cfg.Interrupt, log: cfg.Log}
	if t.interrupt == nil {
		t.interrupt = func() error { return nil }
	}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	sizes := cfg.Device.QueueSizes()
	for i, n := range sizes {
		if n == 0 || n > virtio.MaxQueueSize || n&(n-1) != 0 {
			t.closeEvents()
			return nil, fmt.Errorf("virtio-mmio: queue %d: %w: %d", i, virtio.ErrQueueSize, n)
		}
		e, err := kvm.NewEventFD()
		if err != nil {
			t.closeEvents()
			return nil, err
		}
		t.queues = append(t.queues, &queue{max: n, size: n, notify: e})
	}
	if cn, ok := cfg.Device.(virtio.ConfigNotifier); ok {
		cn.SetConfigChanged(t.configChanged)
	}
	for i, q := range t.queues {
		t.wg.Go(func() { t.serve(i, q) })
	}
	return t, nil
}

// IOEvent is a queue's notification: guest writes of the queue's index to
// the QueueNotify register at window base, to be routed to FD.
type IOEvent struct {
	Event kvm.IOEvent
	FD    *kvm.EventFD
}

// IOEvents returns the ioeventfds to register for a window at base.
func (t *Transport) IOEvents(base uint64) []IOEvent {
	var evs []IOEvent
	for i, q := range t.queues {
		evs = append(evs, IOEvent{
			Event: kvm.IOEvent{Addr: base + NotifyOffset, Len: 4, DataMatch: true, Data: uint64(i)},
			FD:    q.notify,
		})
	}
	return evs
}

// serve passes queue i's notifications to the device while the driver has
// it running, until Close.
func (t *Transport) serve(i int, q *queue) {
	for {
		if _, err := q.notify.Wait(); err != nil {
			return // closed
		}
		if t.status.Load()&statusDriverOK != 0 {
			t.dev.Notify(i)
		}
	}
}

// Close resets the device and stops the notification goroutines. The
// transport must be off the bus (no vCPU running) and its ioeventfds
// unregistered or the VM gone.
func (t *Transport) Close() {
	t.mu.Lock()
	t.resetLocked()
	t.mu.Unlock()
	t.closeEvents()
	t.wg.Wait()
}

func (t *Transport) closeEvents() {
	for _, q := range t.queues {
		q.notify.Close()
	}
}

// Do implements virtio.Queues.
func (t *Transport) Do(i int, f func(*virtio.Queue)) error {
	if i < 0 || i >= len(t.queues) {
		return fmt.Errorf("queue %d of %d: %w", i, len(t.queues), virtio.ErrQueueNotLive)
	}
	q := t.queues[i]
	q.mu.Lock()
	vq := q.vq
	if vq == nil {
		q.mu.Unlock()
		return virtio.ErrQueueNotLive
	}
	before := vq.UsedIndex()
	f(vq)
	used := vq.UsedIndex() != before && vq.NeedsInterrupt()
	broken := vq.Err()
	q.mu.Unlock()

	if broken != nil {
		t.log.Warn("virtio-mmio: driver broke a queue", "type", t.dev.Type(), "queue", i, "err", broken)
		t.needsReset()
		return nil
	}
	if used {
		t.intStatus.Or(intUsedBuffer)
		return t.interrupt()
	}
	return nil
}

// configChanged is the function a virtio.ConfigNotifier device calls after
// its configuration space changed. The generation moves whatever the
// driver is doing, so a driver reading the configuration across the
// change (generation, fields, generation) sees it and reads again. The
// interrupt goes only to a driver that has the device running: one still
// initialising reads the configuration after DRIVER_OK anyway, and one
// that reset the device is not listening. It takes no lock, so a device
// may call it under its own (see virtio.ConfigNotifier); a change racing a
// reset can leave the configuration bit set after it, which a driver takes
// as "read the configuration again", as it does after any reset.
func (t *Transport) configChanged() {
	t.configGen.Add(1)
	if t.status.Load()&statusDriverOK == 0 {
		return
	}
	t.intStatus.Or(intConfigChange)
	if err := t.interrupt(); err != nil {
		t.log.Debug("virtio-mmio: configuration interrupt", "type", t.dev.Type(), "err", err)
	}
}

// needsReset sets DEVICE_NEEDS_RESET and tells the driver.
func (t *Transport) needsReset() {
	if t.status.Or(statusNeedsReset)&statusNeedsReset != 0 {
		return // already said
	}
	t.intStatus.Or(intConfigChange)
	t.interrupt()
}

// Read implements bus.Device.
func (t *Transport) Read(offset uint64, data []byte) {
	if offset >= ConfigSpace {
		t.dev.ReadConfig(offset-ConfigSpace, data)
		return
	}
	clear(data)
	if len(data) != 4 || offset%4 != 0 {
		return // registers are read 32 bits at a time
	}
	t.mu.Lock()
	v := t.readLocked(offset)
	t.mu.Unlock()
	binary.LittleEndian.PutUint32(data, v)
}

func (t *Transport) readLocked(offset uint64) uint32 {
	switch offset {
	case regMagic:
		return magicValue
	case regVersion:
		return version2
	case regDeviceID:
		return t.dev.Type()
	case regVendorID:
		return vendorID
	case regDeviceFeatures:
		f := t.offered()
		switch t.devFeatSel {
		case 0:
			return uint32(f)
		case 1:
			return uint32(f >> 32)
		}
	case regQueueNumMax:
		if q := t.selectedLocked(); q != nil {
			return uint32(q.max)
		}
	case regQueueReady:
		if q := t.selectedLocked(); q != nil && q.ready {
			return 1
		}
	case regInterruptStatus:
		return t.intStatus.Load()
	case regStatus:
		return t.status.Load()
	case regSHMLenLow, regSHMLenHigh, regSHMBaseLow, regSHMBaseHigh:
		return noSharedMemory
	case regConfigGeneration:
		return t.configGen.Load()
	}
	return 0 // write-only and reserved registers
}

func (t *Transport) offered() uint64 { return t.dev.Features() | transportFeatures }

// selectedLocked returns the queue QueueSel names, or nil.
func (t *Transport) selectedLocked() *queue {
	if int64(t.queueSel) < int64(len(t.queues)) {
		return t.queues[t.queueSel]
	}
	return nil
}

// Write implements bus.Device. It never fails: a driver's mistakes are the
// driver's problem.
func (t *Transport) Write(offset uint64, data []byte) error {
	if offset >= ConfigSpace {
		t.dev.WriteConfig(offset-ConfigSpace, data)
		return nil
	}
	if len(data) != 4 || offset%4 != 0 {
		return nil
	}
	v := binary.LittleEndian.Uint32(data)
	if offset == regQueueNotify {
		// Without an ioeventfd (or for another size or value) the write
		// reaches us: deliver it the same way.
		if int64(v) < int64(len(t.queues)) {
			t.queues[v].notify.Signal()
		}
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.writeLocked(offset, v)
	return nil
}

func (t *Transport) writeLocked(offset uint64, v uint32) {
	q := t.selectedLocked()
	switch offset {
	case regDeviceFeatSel:
		t.devFeatSel = v
	case regDriverFeatures:
		switch t.drvFeatSel {
		case 0:
			t.drvFeatures = t.drvFeatures&^0xffff_ffff | uint64(v)
		case 1:
			t.drvFeatures = t.drvFeatures&0xffff_ffff | uint64(v)<<32
		}
	case regDriverFeatSel:
		t.drvFeatSel = v
	case regQueueSel:
		t.queueSel = v
	case regQueueNum:
		if q != nil && !q.ready {
			q.size = uint16(min(v, 0xffff))
			if v > uint32(q.max) {
				q.size = 0 // invalid: refused when the queue is made ready
			}
		}
	case regQueueReady:
		if q != nil {
			t.setReadyLocked(q, v == 1)
		}
	case regInterruptACK:
		t.intStatus.And(^v)
	case regStatus:
		t.setStatusLocked(v)
	case regQueueDescLow, regQueueDescHigh, regQueueDriverLow, regQueueDriverHigh, regQueueDeviceLow, regQueueDeviceHigh:
		if q != nil && !q.ready {
			setHalf(offset, v, &q.desc, &q.driver, &q.device)
		}
	}
}

// setHalf stores v into the low or high half of the queue address the
// register names.
func setHalf(offset uint64, v uint32, desc, driver, device *uint64) {
	var p *uint64
	switch offset {
	case regQueueDescLow, regQueueDescHigh:
		p = desc
	case regQueueDriverLow, regQueueDriverHigh:
		p = driver
	default:
		p = device
	}
	if offset%8 == 0 { // the Low registers sit at multiples of 8
		*p = *p&^0xffff_ffff | uint64(v)
	} else {
		*p = *p&0xffff_ffff | uint64(v)<<32
	}
}

// setReadyLocked makes a queue live after validating its placement, or
// takes it away.
func (t *Transport) setReadyLocked(q *queue, ready bool) {
	if !ready {
		q.mu.Lock()
		q.vq = nil
		q.mu.Unlock()
		q.ready = false
		return
	}
	if q.ready {
		return
	}
	vq, err := virtio.New(t.mem, virtio.Config{
		Size:      q.size,
		DescTable: q.desc,
		AvailRing: q.driver,
		UsedRing:  q.device,
		Indirect:  t.drvFeatures&indirectNegotiated != 0,
		OnMalformed: func(head uint16, err error) {
			t.log.Debug("virtio-mmio: malformed chain", "type", t.dev.Type(), "head", head, "err", err)
		},
	})
	if err != nil {
		t.log.Warn("virtio-mmio: driver placed a queue badly", "type", t.dev.Type(), "err", err)
		t.needsReset()
		return
	}
	q.mu.Lock()
	q.vq = vq
	q.mu.Unlock()
	q.ready = true
}

// setStatusLocked follows the driver through initialisation: 0 resets;
// FEATURES_OK sticks only for an acceptable feature set; DRIVER_OK
// activates the device.
func (t *Transport) setStatusLocked(v uint32) {
	if v == 0 {
		t.resetLocked()
		return
	}
	old := t.status.Load()
	v |= old & statusNeedsReset // only a reset clears it
	if v&statusFeaturesOK != 0 && old&statusFeaturesOK == 0 {
		if err := t.checkFeaturesLocked(); err != nil {
			t.log.Warn("virtio-mmio: driver features refused", "type", t.dev.Type(), "err", err)
			v &^= statusFeaturesOK
		}
	}
	if v&statusDriverOK != 0 && old&statusDriverOK == 0 {
		if v&statusFeaturesOK == 0 {
			v &^= statusDriverOK
		} else if err := t.dev.Activate(t.drvFeatures, t); err != nil {
			t.log.Warn("virtio-mmio: device failed to start", "type", t.dev.Type(), "err", err)
			v = v&^statusDriverOK | statusNeedsReset
		}
	}
	// A queue goroutine may have set NEEDS_RESET meanwhile: keep it.
	for cur := old; !t.status.CompareAndSwap(cur, v|cur&statusNeedsReset); {
		cur = t.status.Load()
	}
	if v&statusDriverOK != 0 && old&statusDriverOK == 0 {
		// Pick up anything the driver queued before it said it was ready.
		for _, q := range t.queues {
			q.notify.Signal()
		}
	}
}

var errFeatures = errors.New("unacceptable driver features")

func (t *Transport) checkFeaturesLocked() error {
	if extra := t.drvFeatures &^ t.offered(); extra != 0 {
		return fmt.Errorf("%w: %#x not offered", errFeatures, extra)
	}
	if t.drvFeatures&virtio.FeatureVersion1 == 0 {
		return fmt.Errorf("%w: VIRTIO_F_VERSION_1 not accepted (legacy drivers are not supported)", errFeatures)
	}
	return nil
}

// resetLocked returns the device to its initial state. Once each queue's
// lock has been taken and released with the queue gone, no Do can still
// be using it, so the device can be reset.
func (t *Transport) resetLocked() {
	for _, q := range t.queues {
		q.mu.Lock()
		q.vq = nil
		q.mu.Unlock()
		q.ready, q.size, q.desc, q.driver, q.device = false, q.max, 0, 0, 0
	}
	t.dev.Reset()
	t.status.Store(0)
	t.intStatus.Store(0)
	t.devFeatSel, t.drvFeatSel, t.drvFeatures, t.queueSel = 0, 0, 0, 0
}
