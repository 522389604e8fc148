package runtime

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/containerd/errdefs"

	"github.com/huskrt/husk/runtime/handler"
)

// fakeHandler only has a name; Select never creates anything.
type fakeHandler string

func (f fakeHandler) Name() string { return string(f) }
func (f fakeHandler) Create(context.Context, *handler.CreateRequest) (handler.Container, error) {
	return nil, errors.New("not used")
}
func (f fakeHandler) NewSandbox(context.Context, *handler.SandboxRequest) (handler.Sandbox, error) {
	return createOnly(f.Create), nil
}
func (f fakeHandler) CleanupSandbox(context.Context, string) error                 { return nil }
func (f fakeHandler) Cleanup(context.Context, string, string, string) (int, error) { return 0, nil }

func TestSelect(t *testing.T) {
	m := NewManager(fakeHandler("linux"), fakeHandler("wasm"))
	tests := []struct {
		name        string
		def         string
		annotations map[string]string
		want        string
		err         error
		msg         string
	}{
		{"config default", "linux", nil, "linux", nil, ""},
		{"annotation overrides default", "linux", map[string]string{AnnotationHandler: "wasm"}, "wasm", nil, ""},
		{"other annotations ignored", "wasm", map[string]string{"io.husk.other": "linux"}, "wasm", nil, ""},
		{"unknown annotation", "linux", map[string]string{AnnotationHandler: "bogus"}, "", errdefs.ErrInvalidArgument,
			`unknown handler "bogus" in annotation io.husk.handler (want linux, wasm, virt)`},
		{"unknown default", "nope", nil, "", errdefs.ErrInvalidArgument, `unknown handler "nope" in config runtime.default_handler`},
		{"known but not built", "linux", map[string]string{AnnotationHandler: "virt"}, "", errdefs.ErrInvalidArgument,
			`handler "virt" is not available in this build`},
		{"empty annotation is not a default", "linux", map[string]string{AnnotationHandler: ""}, "", errdefs.ErrInvalidArgument, `unknown handler ""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := m.Select(tt.def, tt.annotations)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				if !strings.Contains(err.Error(), tt.msg) {
					t.Fatalf("err = %q, want it to contain %q", err, tt.msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if h.Name() != tt.want {
				t.Fatalf("handler = %s, want %s", h.Name(), tt.want)
			}
		})
	}
}
