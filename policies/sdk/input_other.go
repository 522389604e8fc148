//go:build !wasip1

package sdk

// Natively (tests) there is no host: the SDK reads JSON itself.

// inModule is false: no host helpers.
const inModule = false

func inputIndex(b []byte) []uint32 { return Index(b) }

func hostJSONGet(base uint32, pointer string) (start, end int, ok bool) { return 0, 0, false }

func hostJSONMatch(off uint32, set, mode int32) int32 { return -2 }

func hostSet(ss []string) int32 { return -1 }
