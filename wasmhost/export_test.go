package wasmhost

// Bounds on host functions and the call stack, which docs/hooks.md §8 states.
const (
	MaxIOVecs        = maxIOVecs
	MaxSubscriptions = maxSubscriptions
	RandomChunk      = randomChunk
	FrameBase        = frameBase
	ValueBytes       = valueBytes
)
