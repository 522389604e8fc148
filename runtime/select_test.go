package runtime

import (
	"errors"
	"strings"
	"testing"

	"github.com/containerd/errdefs"

	"github.com/huskrt/husk/runtime/handler"
)

func TestContainerHandler(t *testing.T) {
	linux, wasm, virt := fakeHandler("linux"), fakeHandler("wasm"), fakeHandler("virt")
	m := NewManager(linux, wasm, virt)
	pause := Pod{SandboxID: "p", IsSandbox: true, CRI: true}
	member := Pod{SandboxID: "p", CRI: true}
	alone := Pod{SandboxID: "c", IsSandbox: true}
	ann := func(kv ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name    string
		sandbox handler.Handler
		pod     Pod
		ann     map[string]string
		want    string
		smart   bool
		err     string
	}{
		{"linux sandbox: look at args[0]", linux, alone, nil, "wasm", true, ""},
		{"pod member of a linux pod: look at args[0]", linux, member, nil, "wasm", true, ""},
		{"wasm sandbox: wasm", wasm, alone, nil, "wasm", false, ""},
		{"pod member of a wasm pod: wasm", wasm, member, nil, "wasm", false, ""},
		{"pause of a wasm pod: linux", wasm, pause, ann(AnnotationHandler, "wasm"), "linux", false, ""},
		{"pause of a linux pod: linux, no look", linux, pause, nil, "linux", false, ""},
		{"pause ignores crun's annotation", linux, pause, ann(AnnotationOCIHandler, "wasm"), "linux", false, ""},
		{"virt pod: virt, whatever is asked", virt, member, ann(AnnotationOCIHandler, "wasm"), "virt", false, ""},
		{"io.husk.handler=linux in a wasm pod", wasm, member, ann(AnnotationHandler, "linux"), "linux", false, ""},
		{"io.husk.handler=wasm in a linux pod", linux, member, ann(AnnotationHandler, "wasm"), "wasm", false, ""},
		{"io.husk.handler wins over crun's", linux, member, ann(AnnotationHandler, "linux", AnnotationOCIHandler, "wasm"), "linux", false, ""},
		{"io.husk.handler=virt in a linux pod", linux, member, ann(AnnotationHandler, "virt"), "", false, `io.husk.handler="virt" on a container`},
		{"run.oci.handler=wasm", linux, alone, ann(AnnotationOCIHandler, "wasm"), "wasm", false, ""},
		{"run.oci.handler=wasm-smart", wasm, alone, ann(AnnotationOCIHandler, "wasm-smart"), "wasm", true, ""},
		{"run.oci.handler=krun", linux, alone, ann(AnnotationOCIHandler, "krun"), "", false, `run.oci.handler="krun"`},
		{"variant compat", linux, alone, ann(AnnotationWasmVariant, "compat"), "wasm", false, ""},
		{"variant compat-smart", wasm, member, ann(AnnotationWasmVariant, "compat-smart"), "wasm", true, ""},
		{"unknown variant is not ours", linux, alone, ann(AnnotationWasmVariant, "other"), "wasm", true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := m.containerHandler(tt.sandbox, tt.pod, tt.ann)
			if tt.err != "" {
				if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want an invalid argument saying %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.h.Name() != tt.want || c.smart != tt.smart {
				t.Fatalf("handler %s smart %v, want %s smart %v", c.h.Name(), c.smart, tt.want, tt.smart)
			}
		})
	}
}

// Without the wasm handler built in, a linux sandbox runs everything
// natively, and asking for Wasm says it is missing.
func TestContainerHandlerWithoutWasm(t *testing.T) {
	m := NewManager(fakeHandler("linux"))
	c, err := m.containerHandler(fakeHandler("linux"), Pod{SandboxID: "c", IsSandbox: true}, nil)
	if err != nil || c.h.Name() != "linux" || c.smart {
		t.Fatalf("got %v smart %v, %v; want linux", c.h, c.smart, err)
	}
	_, err = m.containerHandler(fakeHandler("linux"), Pod{SandboxID: "c", IsSandbox: true}, map[string]string{AnnotationOCIHandler: "wasm"})
	if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), `handler "wasm" (for annotation run.oci.handler) is not available in this build`) {
		t.Fatalf("err = %v", err)
	}
}
