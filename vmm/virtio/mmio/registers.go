package mmio

// Register offsets of the virtio-mmio version 2 transport (virtio 1.2,
// 4.2.2). Every register below ConfigSpace is 32 bits wide.
const (
	regMagic            = 0x000
	regVersion          = 0x004
	regDeviceID         = 0x008
	regVendorID         = 0x00c
	regDeviceFeatures   = 0x010
	regDeviceFeatSel    = 0x014
	regDriverFeatures   = 0x020
	regDriverFeatSel    = 0x024
	regQueueSel         = 0x030
	regQueueNumMax      = 0x034
	regQueueNum         = 0x038
	regQueueReady       = 0x044
	regQueueNotify      = 0x050
	regInterruptStatus  = 0x060
	regInterruptACK     = 0x064
	regStatus           = 0x070
	regQueueDescLow     = 0x080
	regQueueDescHigh    = 0x084
	regQueueDriverLow   = 0x090
	regQueueDriverHigh  = 0x094
	regQueueDeviceLow   = 0x0a0
	regQueueDeviceHigh  = 0x0a4
	regSHMSel           = 0x0ac
	regSHMLenLow        = 0x0b0
	regSHMLenHigh       = 0x0b4
	regSHMBaseLow       = 0x0b8
	regSHMBaseHigh      = 0x0bc
	regConfigGeneration = 0x0fc
	// ConfigSpace is where the device configuration space starts.
	ConfigSpace = 0x100
	// NotifyOffset is the QueueNotify register, for ioeventfd registration.
	NotifyOffset = regQueueNotify
)

// Register values.
const (
	magicValue = 0x7472_6976 // "virt"
	version2   = 2
	vendorID   = 0x4b53_5548 // "HUSK"
)

// Device status bits (virtio 1.2, 2.1).
const (
	statusDriverOK     = 4
	statusFeaturesOK   = 8
	statusNeedsReset   = 64
	intUsedBuffer      = 1 // InterruptStatus: a queue has used buffers
	intConfigChange    = 2 // InterruptStatus: configuration (or status) changed
	noSharedMemory     = 0xffff_ffff
	transportFeatures  = 1<<28 | 1<<32 // virtio.FeatureRingIndirectDesc | virtio.FeatureVersion1
	indirectNegotiated = 1 << 28
)
