// Package wazerowasi gives wazero's WASI preview 1 functions one at a time,
// so that a host module can hold only those a guest module imports.
//
// wazero's compiler makes a trampoline for every function of a host module
// each time the module is instantiated: its whole preview 1 (46 functions)
// costs that on every start of a Wasm container (the runner) and every load
// of a hook module (wasmhost), when a module imports a handful of them, or
// none.
package wazerowasi

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// Module is the import module name of WASI preview 1.
const Module = wasi_snapshot_preview1.ModuleName

// Functions are wazero's preview 1 functions by name, to call with a guest
// module (they find its descriptor table through it), and their
// definitions (for their types).
type Functions struct {
	Fn   map[string]api.GoModuleFunction
	Defs map[string]api.FunctionDefinition
}

var (
	once   sync.Once
	shared Functions
	err    error
)

// Load returns wazero's preview 1 functions. The host module they come
// from is compiled once per process by wazero's interpreter, which
// compiles nothing for a host function, and never instantiated. The maps
// are shared: do not change them.
func Load() (Functions, error) {
	once.Do(func() { shared, err = load(context.Background()) })
	return shared, err
}

func load(ctx context.Context) (Functions, error) {
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer rt.Close(ctx)
	b := rt.NewHostModuleBuilder(Module)
	wasi_snapshot_preview1.NewFunctionExporter().ExportFunctions(b)
	compiled, err := b.Compile(ctx)
	if err != nil {
		return Functions{}, err
	}
	f := Functions{Fn: map[string]api.GoModuleFunction{}, Defs: compiled.ExportedFunctions()}
	for name, def := range f.Defs {
		fn, ok := def.GoFunction().(api.GoModuleFunction)
		if !ok {
			return Functions{}, fmt.Errorf("wazero's %s is not a Go module function (%T)", name, def.GoFunction())
		}
		f.Fn[name] = fn
	}
	return f, nil
}

// Imports are the names of the functions mod imports from preview 1, once
// each, in the order of its imports (never nil).
func Imports(mod wazero.CompiledModule) []string {
	names := []string{}
	for _, def := range mod.ImportedFunctions() {
		if m, name, ok := def.Import(); ok && m == Module && !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	return names
}
