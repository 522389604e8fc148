package wasmhost

// Bounds on host functions, which docs/hooks.md §8 states.
const (
	MaxIOVecs        = maxIOVecs
	MaxSubscriptions = maxSubscriptions
	RandomChunk      = randomChunk
)
