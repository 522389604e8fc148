//go:build wasip1

//lint:file-ignore U1000 the functions are called by the host, through go:wasmexport

package sdk

import "unsafe"

// The hook ABI v1, guest side. The host writes the point name and the
// event into one buffer from husk_alloc; husk_decide returns the decision
// as ptr<<32 | len. Both buffers are package variables reused call after
// call: the host copies the decision before its next call, and the
// module's state is never shared between instances.
var (
	input  []byte   // the buffer husk_alloc hands out
	index  []uint32 // the structural index of the current JSON input
	output []byte   // the last decision, or husk_init's error message
	config []byte   // the configuration, kept for the module's life
)

//go:wasmexport husk_hook_abi_v1
func abiV1() {}

//go:wasmexport husk_alloc
func alloc(n uint32) unsafe.Pointer {
	if uint32(cap(input)) < n {
		input = make([]byte, n)
	}
	input = input[:n]
	if n == 0 {
		return nil
	}
	// Sound: input is a package variable, so the array stays allocated
	// (and Go's collector does not move objects) until the next alloc.
	return unsafe.Pointer(unsafe.SliceData(input))
}

//go:wasmexport husk_init
func initConfig(ptr unsafe.Pointer, n uint32) uint64 {
	// Sound: ptr and n are a buffer alloc returned (the ABI guarantees it).
	config = append([]byte(nil), unsafe.Slice((*byte)(ptr), n)...)
	if err := Configure(config); err != nil {
		output = append(output[:0], err.Error()...)
		return packed(output)
	}
	return 0
}

//go:wasmexport husk_decide
func decide(pointPtr unsafe.Pointer, pointLen uint32, eventPtr unsafe.Pointer, eventLen uint32) uint64 {
	// Sound: both lie in the buffer alloc returned, alive until the next
	// alloc; Decide does not keep them (Event's contract).
	point := unsafe.String((*byte)(pointPtr), pointLen)
	event := unsafe.Slice((*byte)(eventPtr), eventLen)
	output = Decide(point, event).AppendJSON(output[:0])
	return packed(output)
}

// packed returns b's address and length as the ABI's i64.
func packed(b []byte) uint64 {
	// Sound: a wasm32 address fits in 32 bits; b is a package variable.
	return uint64(uintptr(unsafe.Pointer(unsafe.SliceData(b))))<<32 | uint64(len(b))
}

//go:wasmimport husk log
func hostLog(level int32, ptr unsafe.Pointer, n uint32)

//go:wasmimport husk json_index
func hostJSONIndex(ptr unsafe.Pointer, n uint32) int32

//go:wasmimport husk json_get
func hostJSONGetImport(base uint32, ptr unsafe.Pointer, n uint32) uint64

//go:wasmimport husk json_match
func hostJSONMatch(off uint32, set, mode int32) int32

//go:wasmimport husk set_new
func hostSetNew(ptr unsafe.Pointer, n uint32) int32

// inModule is true: the host's JSON helpers are there.
const inModule = true

// hostJSONGet returns the extent of the value at pointer below the value
// starting at base of the call's input; start is -1 when there is none.
func hostJSONGet(base uint32, pointer string) (start, end int, ok bool) {
	// Sound: the host only reads pointer during the call.
	r := hostJSONGetImport(base, unsafe.Pointer(unsafe.StringData(pointer)), uint32(len(pointer)))
	if r == ^uint64(0) {
		return -1, -1, true
	}
	off, n := int(r>>32), int(uint32(r))
	return off, off + n, true
}

// hostSet registers ss with the host and returns its id, or -1.
func hostSet(ss []string) int32 {
	b := append([]byte(nil), '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	b = append(b, ']')
	// Sound: the host only reads b during the call.
	return hostSetNew(unsafe.Pointer(unsafe.SliceData(b)), uint32(len(b)))
}

// inputIndex returns the structural index of b, the current call's JSON
// input (the event, or the config in husk_init), which the host computes
// natively. It reuses one buffer: the index of a call is valid until the
// next call.
func inputIndex(b []byte) []uint32 {
	if len(b) == 0 {
		return nil
	}
	if cap(index) < len(b) {
		index = make([]uint32, len(b))
	}
	idx := index[:len(b)]
	// Sound: idx is a package variable's array of len(b) uint32, 4*len(b)
	// bytes the host writes during the call.
	if hostJSONIndex(unsafe.Pointer(unsafe.SliceData(idx)), uint32(4*len(b))) != 0 {
		return Index(b) // not the call's input: index it here, slowly
	}
	return idx
}

func logLine(level Level, msg string) {
	// Sound: the host only reads msg during the call.
	hostLog(int32(level), unsafe.Pointer(unsafe.StringData(msg)), uint32(len(msg)))
}
