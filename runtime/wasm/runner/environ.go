package runner

import (
	"context"
	"strings"

	"github.com/tetratelabs/wazero/api"
)

// moduleEnv is the module's environment as environ_get gives it: "KEY=value"
// strings, each NUL-terminated, in the order of the process's
// environment, a repeated key keeping its first place and its last value
// (as wazero's ModuleConfig.WithEnv does). The runner serves
// environ_sizes_get and environ_get itself from it, instead of handing the
// environment to wazero with WithEnv: each WithEnv call copies the map of
// the keys set so far, so n variables cost n²/2 map insertions: 700
// (which a Kubernetes namespace with 100 services puts in every
// container's environment) took 30 ms of CPU of every start here, twice
// the rest of a tiny module's start.
type moduleEnv struct {
	vars [][]byte // each "KEY=value\x00"
	size uint64   // their total length
}

func newEnviron(env []string) *moduleEnv {
	e := &moduleEnv{}
	at := map[string]int{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		b := []byte(k + "=" + v + "\x00")
		if i, ok := at[k]; ok {
			e.size -= uint64(len(e.vars[i]))
			e.vars[i] = b
		} else {
			at[k] = len(e.vars)
			e.vars = append(e.vars, b)
		}
		e.size += uint64(len(b))
	}
	return e
}

// sizesGet is environ_sizes_get(count *u32, size *u32): the number of
// variables and their total size, NULs included.
func (e *moduleEnv) sizesGet(ctx context.Context, mod api.Module, stack []uint64) {
	countPtr, sizePtr := uint32(stack[0]), uint32(stack[1])
	mem := mod.Memory()
	if mem == nil || e.size > 1<<32-1 || !mem.WriteUint32Le(countPtr, uint32(len(e.vars))) || !mem.WriteUint32Le(sizePtr, uint32(e.size)) {
		stack[0] = errnoFault
		return
	}
	stack[0] = errnoSuccess
}

// get is environ_get(environ **u8, buf *u8): a pointer to each variable at
// environ, the variables at buf. Both regions are checked against the
// memory whole before anything is written.
func (e *moduleEnv) get(ctx context.Context, mod api.Module, stack []uint64) {
	ptrs, buf := uint32(stack[0]), uint32(stack[1])
	mem := mod.Memory()
	n := uint64(len(e.vars))
	if mem == nil || 4*n > 1<<32-1 || e.size > 1<<32-1 {
		stack[0] = errnoFault
		return
	}
	ptrBuf, ok := mem.Read(ptrs, uint32(4*n))
	if !ok {
		stack[0] = errnoFault
		return
	}
	data, ok := mem.Read(buf, uint32(e.size))
	if !ok || uint64(buf)+e.size > 1<<32 {
		stack[0] = errnoFault
		return
	}
	var off uint32
	for i, v := range e.vars {
		p := buf + off
		ptrBuf[4*i], ptrBuf[4*i+1], ptrBuf[4*i+2], ptrBuf[4*i+3] = byte(p), byte(p>>8), byte(p>>16), byte(p>>24)
		copy(data[off:], v)
		off += uint32(len(v))
	}
	stack[0] = errnoSuccess
}
