package virtio

import "errors"

// Feature bits every transport handles (virtio 1.2, 6).
const (
	FeatureRingIndirectDesc = 1 << 28
	FeatureVersion1         = 1 << 32
)

// Device types (virtio 1.2, 5).
const (
	TypeNet     = 1
	TypeBlock   = 2
	TypeEntropy = 4
	TypeVsock   = 19
)

// ErrQueueNotLive reports a queue the driver has not made ready, or one a
// reset took away.
var ErrQueueNotLive = errors.New("virtqueue is not live")

// Device is a virtio device as a transport drives it. The transport owns
// the registers, feature negotiation and the queues' placement; the device
// owns what requests mean.
//
// Activate, Reset, ReadConfig and WriteConfig run on a vCPU thread in
// response to a register access and must be quick; Notify runs on the
// queue's own goroutine and may do I/O.
type Device interface {
	Type() uint32
	// Features returns the device-specific feature bits offered; the
	// transport adds FeatureVersion1 and FeatureRingIndirectDesc.
	Features() uint64
	// QueueSizes returns each queue's maximum size; its length is the
	// number of queues.
	QueueSizes() []uint16
	// ReadConfig fills data from the device configuration space at
	// offset; bytes beyond the space read as zero.
	ReadConfig(offset uint64, data []byte)
	// WriteConfig writes the configuration space; most devices ignore it.
	WriteConfig(offset uint64, data []byte)
	// Activate starts the device once the driver is ready (DRIVER_OK)
	// with the features it accepted. The device reaches its queues only
	// through qs, until Reset.
	Activate(features uint64, qs Queues) error
	// Notify tells the device that the driver made buffers available in
	// queue i.
	Notify(i int)
	// Reset stops the device: the driver reset it. After Reset returns the
	// device must not use the Queues it was given.
	Reset()
}

// ConfigNotifier is a Device whose configuration space can change while
// the driver uses it (a disk whose backend is swapped). The transport
// calls SetConfigChanged once, in its constructor, before the driver can
// reach the device; the device calls changed after each change, with the new
// configuration already visible to ReadConfig and before any ReadConfig
// can return it (in the same critical section), so that a driver reading
// the configuration across the change sees the generation move. changed
// bumps the transport's configuration generation and, while the driver
// has the device running, raises a configuration-change interrupt. It
// may be called from any goroutine, with the device's own locks held: it
// never calls back into the device, takes no transport lock and does not
// block.
type ConfigNotifier interface {
	SetConfigChanged(changed func())
}

// Queues gives an active device its queues.
type Queues interface {
	// Do runs f with queue i while no reset can take it away, then
	// interrupts the driver if f completed chains and the driver wants to
	// hear about them. It returns ErrQueueNotLive, without calling f, for
	// a queue that is not ready.
	Do(i int, f func(*Queue)) error
}
