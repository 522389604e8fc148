package wasm

import (
	"fmt"
	"strings"
	"sync"

	"github.com/containerd/errdefs"

	"github.com/huskrt/husk/runtime/wasm/runnerapi"
)

// wasiFuncs is the set of functions the runner provides.
var wasiFuncs = sync.OnceValue(func() map[string]bool {
	fns := make(map[string]bool, len(runnerapi.WASIPreview1))
	for _, f := range runnerapi.WASIPreview1 {
		fns[f] = true
	}
	return fns
})

// checkImports fails, naming them, if the module imports anything the
// runner does not provide. name is the module's path, for the message.
func checkImports(name string, wasm []byte) error {
	imps, err := moduleImports(wasm)
	if err != nil {
		return fmt.Errorf("module %s: %w: %w", name, err, errdefs.ErrInvalidArgument)
	}
	provided := wasiFuncs()
	var missing []string
	for _, imp := range imps {
		if imp.Kind == importFunc && imp.Module == runnerapi.WASIModule && provided[imp.Name] {
			continue
		}
		missing = append(missing, imp.String())
	}
	if len(missing) == 0 {
		return nil
	}
	more := ""
	if len(missing) > 5 {
		more = fmt.Sprintf(" and %d more", len(missing)-5)
		missing = missing[:5]
	}
	return fmt.Errorf("module %s imports %s%s, which husk does not provide (only WASI preview1 functions, module %s): %w",
		name, strings.Join(missing, ", "), more, runnerapi.WASIModule, errdefs.ErrInvalidArgument)
}
