package wasm

import (
	"fmt"
	"os"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/huskrt/husk/runtime/wasm/runnerapi"
)

// The memory floor of a Wasm container. The container's memory limit is
// its cgroup's, and the cgroup holds more than the module's linear memory:
// the runner (a Go program: its heap and the pages of its binary) and the
// module's compiled machine code, which is about four times the module's
// code and, for a Go module, most of the floor; while the runner loads the
// module, it holds the compiled code twice. Measured here (wazero v1.12,
// amd64, cgroup v1): a WAT module that sleeps peaks at 4 MiB of cgroup
// memory all told; examples/wasm/hello, a Go program (2.6 MB of Wasm,
// 9.1 MiB compiled), ran at 29 MiB and above and was killed, status 137
// and no word, at 28 (now and then) and below (#13). Since the runner
// frees its copy of the compiled code before the module runs, hello runs
// at 23 MiB (runner 4 + compiled 9.1 + the module's memory); below about
// 22 MiB (4 + 2 x 9.1) it cannot load, and is refused at create.
const (
	// runnerFloor is the runner's own need, without a module's code or
	// memory.
	runnerFloor = 4 << 20
	// compiledPerByte estimates compiled code from the module's size when
	// the cache names no entry to measure (10.8 MB from 2.6 MB for a Go
	// module).
	compiledPerByte = 4
)

// compiledSize is the module's compiled code, measured from the cache
// entry when there is one.
func compiledSize(entry string, wasm []byte) int64 {
	if entry != "" {
		if fi, err := os.Stat(entry); err == nil {
			return fi.Size()
		}
	}
	return int64(len(wasm)) * compiledPerByte
}

// memoryLimit is the container's memory limit in bytes; 0: none.
func memoryLimit(spec *specs.Spec) int64 {
	if spec.Linux == nil || spec.Linux.Resources == nil || spec.Linux.Resources.Memory == nil {
		return 0
	}
	if l := spec.Linux.Resources.Memory.Limit; l != nil && *l > 0 {
		return *l
	}
	return 0
}

// modulePages is the Wasm page limit of a container's module: what its
// memory limit leaves after the floor (runner and compiled code), so that
// a module that needs more sees memory.grow fail, and says so (a Go
// module's runtime prints "fatal error: out of memory"), before the OOM
// killer ends the container without a word. A limit at or below the floor
// cannot run the module at all: that is refused, at create, saying why.
func modulePages(spec *specs.Spec, entry string, wasm []byte) (uint32, error) {
	limit := memoryLimit(spec)
	if limit == 0 {
		return runnerapi.MaxPages, nil
	}
	compiled := compiledSize(entry, wasm)
	// While it loads, the runner holds the compiled code twice: as read
	// from the cache, and mapped to run. It frees the first copy before
	// the module runs.
	if need := runnerFloor + 2*compiled; limit <= need {
		return 0, fmt.Errorf("memory limit %s is below what the Wasm runtime needs to load this module: about %s (husk-wasm-runner %s, and twice the module's compiled code of %s while it loads), and the module's own memory comes on top: %w",
			mib(limit), mib(need), mib(runnerFloor), mib(compiled), errdefs.ErrInvalidArgument)
	}
	left := (limit - runnerFloor - compiled) / runnerapi.PageSize
	if left > runnerapi.MaxPages {
		return runnerapi.MaxPages, nil
	}
	return uint32(left), nil
}

// mib formats n bytes in MiB, one decimal.
func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
