package virt

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/containerd/errdefs"

	"github.com/huskrt/husk/runtime/config"
	"github.com/huskrt/husk/runtime/handler"
)

// recordingHypervisor is a backend that records what it is asked and
// boots nothing.
type recordingHypervisor struct {
	name    string
	started []VMConfig
	cleaned []string
}

var errNotBooted = errors.New("not booted (test)")

func (r *recordingHypervisor) Name() string { return r.name }
func (r *recordingHypervisor) Start(ctx context.Context, cfg *VMConfig) (VM, error) {
	r.started = append(r.started, *cfg)
	return nil, errNotBooted
}
func (r *recordingHypervisor) Cleanup(ctx context.Context, dir string) error {
	r.cleaned = append(r.cleaned, dir)
	return nil
}

// TestHandlerPicksTheConfiguredBackend: [virt] hypervisor picks one of
// the build's backends, [virt.qemu] reaches it, a name the build lacks is
// refused, and a dead shim's sandbox is cleaned by every backend.
func TestHandlerPicksTheConfiguredBackend(t *testing.T) {
	b, q := &recordingHypervisor{name: "builtin"}, &recordingHypervisor{name: "qemu"}
	h := New(b, q)
	dir := t.TempDir()
	cfg := config.Default()
	cfg.Virt.GuestImage = fakeImage(t, filepath.Join(dir, "guest"))
	cfg.Virt.Hypervisor = "qemu"
	cfg.Virt.QEMU = config.VirtQEMU{Binary: "/opt/qemu", Accel: "tcg", User: "husk-qemu"}
	state := filepath.Join(dir, "state")
	req := &handler.SandboxRequest{ID: "pod", Namespace: "ns", StateDir: state, Config: &cfg}
	if _, err := h.NewSandbox(context.Background(), req); !errors.Is(err, errNotBooted) {
		t.Fatalf("NewSandbox: %v, want the qemu backend's error", err)
	}
	if len(b.started) != 0 || len(q.started) != 1 {
		t.Fatalf("started: builtin %d, qemu %d; want qemu once", len(b.started), len(q.started))
	}
	if got := q.started[0].QEMU; got != (QEMUConfig{Binary: "/opt/qemu", Accel: "tcg", User: "husk-qemu"}) {
		t.Errorf("the qemu backend got %+v", got)
	}
	cfg.Virt.Hypervisor = "xen"
	if _, err := h.NewSandbox(context.Background(), req); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("an unknown backend: %v, want invalid argument", err)
	}
	if err := h.CleanupSandbox(context.Background(), state); err != nil {
		t.Fatal(err)
	}
	if want := vmDir(state); len(b.cleaned) != 1 || b.cleaned[0] != want || len(q.cleaned) != 1 || q.cleaned[0] != want {
		t.Errorf("cleaned: builtin %q, qemu %q; want %s each", b.cleaned, q.cleaned, want)
	}
}
