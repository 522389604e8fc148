//go:build !linux

package wasmhost

// mapMemory reserves nothing outside Linux: memories are Go slices, grown
// as wazero grows them.
func mapMemory(uint64) ([]byte, bool) { return nil, false }

func unmapMemory([]byte) {}
