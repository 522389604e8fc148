package wasmhost

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/tetratelabs/wazero"

	"github.com/huskrt/husk/wasmhost/wasmtest"
)

// FuzzInstrumentStack: instrumenting any bytes within boundModule's bounds
// neither panics nor turns a module wazero accepts into one it refuses.
func FuzzInstrumentStack(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.wat")
	for _, s := range seeds {
		f.Add(wasmtest.WAT(f, s))
	}
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	f.Fuzz(func(t *testing.T, wasm []byte) {
		wasm, err := boundModule(wasm) // as Load does: wazero is not given what it refuses
		if err != nil {
			return
		}
		out, err := instrumentStack(wasm)
		if err != nil {
			return
		}
		orig, err := compileModule(ctx, rt, wasm)
		if err != nil {
			return
		}
		_ = orig.Close(ctx)
		inst, err := compileModule(ctx, rt, out)
		if err != nil {
			t.Fatalf("wazero accepts the module but not its instrumented form: %v", err)
		}
		_ = inst.Close(ctx)
	})
}
