package runtime

import (
	"context"
	"fmt"

	"github.com/containerd/errdefs"

	"github.com/huskrt/husk/internal/vocab"
	"github.com/huskrt/husk/runtime/handler"
)

// crun's annotations for Wasm containers, honoured for compatibility with
// images and pods written for crun: "wasm" and "compat" ask for Wasm; the
// "-smart" forms ask for Wasm only when the container's program is a Wasm
// module, and run anything else natively.
const (
	AnnotationOCIHandler  = "run.oci.handler"           // wasm | wasm-smart
	AnnotationWasmVariant = "module.wasm.image/variant" // compat | compat-smart
)

// Handler names as the selection rules use them.
const (
	handlerLinux = vocab.Linux
	handlerWasm  = vocab.Wasm
)

// choice is the handler a container was given, and whether it was asked to
// look at the program first (handler.SmartCreator).
type choice struct {
	h     handler.Handler
	smart bool
}

// create creates the container in part, the pod's sandbox of c's handler,
// and returns it with the name of the handler whose kind it is.
func (c choice) create(ctx context.Context, part handler.Sandbox, req *handler.CreateRequest) (handler.Container, string, error) {
	if c.smart {
		sc, ok := part.(handler.SmartCreator)
		if !ok {
			return nil, "", fmt.Errorf("handler %q cannot tell a Wasm container from a native one: %w", c.h.Name(), errdefs.ErrFailedPrecondition)
		}
		return sc.CreateSmart(ctx, req)
	}
	ctr, err := part.Create(ctx, req)
	return ctr, c.h.Name(), err
}

// containerHandler chooses the handler of one container of a sandbox whose
// handler is sb:
//
//   - in a sandbox of another kind (virt), the sandbox's handler: its
//     containers run where the sandbox is;
//   - the CRI's sandbox (pause) container never runs as Wasm: linux;
//   - the container's own annotations: io.husk.handler (linux or wasm),
//     then crun's run.oci.handler (wasm, wasm-smart), then
//     module.wasm.image/variant (compat, compat-smart);
//   - otherwise, in a wasm sandbox, wasm; in a linux sandbox, wasm if the
//     container's args[0] is a Wasm module (\0asm) and linux if not.
//
// So a pod may mix native and Wasm containers; a linux sandbox without the
// wasm handler built in runs everything natively.
func (m *Manager) containerHandler(sb handler.Handler, pod Pod, ann map[string]string) (choice, error) {
	if n := sb.Name(); n != handlerLinux && n != handlerWasm {
		return choice{h: sb}, nil
	}
	if pod.CRI && pod.IsSandbox {
		return m.builtin(handlerLinux, "the pod's sandbox container")
	}
	want, smart, source, err := wasmRequest(ann)
	if err != nil {
		return choice{}, err
	}
	switch {
	case want != "":
		c, err := m.builtin(want, source)
		c.smart = smart
		return c, err
	case sb.Name() == handlerWasm:
		return choice{h: sb}, nil
	}
	if w, ok := m.handlers[handlerWasm]; ok {
		return choice{h: w, smart: true}, nil
	}
	return choice{h: sb}, nil
}

// wasmRequest reads what a container's annotations ask for: a handler name
// ("" for nothing), whether smart, and which annotation said so.
func wasmRequest(ann map[string]string) (name string, smart bool, source string, err error) {
	if v, ok := ann[AnnotationHandler]; ok {
		source = "annotation " + AnnotationHandler
		switch v {
		case handlerLinux, handlerWasm:
			return v, false, source, nil
		}
		return "", false, "", fmt.Errorf("%s=%q on a container of a linux or wasm sandbox: want linux or wasm (a container runs in a VM only if its whole pod does): %w",
			AnnotationHandler, v, errdefs.ErrInvalidArgument)
	}
	if v, ok := ann[AnnotationOCIHandler]; ok {
		source = "annotation " + AnnotationOCIHandler
		switch v {
		case "wasm":
			return handlerWasm, false, source, nil
		case "wasm-smart":
			return handlerWasm, true, source, nil
		case "":
		default:
			return "", false, "", fmt.Errorf("%s=%q: husk supports wasm and wasm-smart: %w", AnnotationOCIHandler, v, errdefs.ErrInvalidArgument)
		}
	}
	switch ann[AnnotationWasmVariant] {
	case "compat":
		return handlerWasm, false, "annotation " + AnnotationWasmVariant, nil
	case "compat-smart":
		return handlerWasm, true, "annotation " + AnnotationWasmVariant, nil
	}
	return "", false, "", nil
}

// builtin returns the built-in handler name as a choice, or says that this
// build lacks it (source: who asked).
func (m *Manager) builtin(name, source string) (choice, error) {
	h, ok := m.handlers[name]
	if !ok {
		// Not ErrNotImplemented: see Select.
		return choice{}, fmt.Errorf("handler %q (for %s) is not available in this build: %w", name, source, errdefs.ErrInvalidArgument)
	}
	return choice{h: h}, nil
}
