package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/huskrt/husk/runtime/config"
	"github.com/huskrt/husk/runtime/handler"
	"github.com/huskrt/husk/wasmhost/wasmtest"
)

// vmHandler is a fake virt handler: its sandbox asks sandbox.vm when set
// up, its containers ask container.rootfs when created, and it counts
// sandboxes set up and closed.
type vmHandler struct {
	mu       sync.Mutex
	vms      []handler.VM     // the shapes the sandboxes started with
	rootfs   []handler.Rootfs // what each create attached
	opened   int
	closed   int
	closedAt []int // how many containers were created when a close came
	created  int
	pause    []bool // each create's PodSandbox
	// resources are the sizing each sandbox was set up with.
	resources []*specs.LinuxResources
}

func (h *vmHandler) Name() string { return "virt" }
func (h *vmHandler) NewSandbox(ctx context.Context, req *handler.SandboxRequest) (handler.Sandbox, error) {
	vm := handler.VM{Hypervisor: "builtin", VCPUs: 1, MemoryMiB: 256, KernelParams: []string{"nokaslr"}}
	if err := req.Policy.VM(ctx, &vm); err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.vms = append(h.vms, vm)
	h.resources = append(h.resources, req.Resources)
	h.opened++
	return &vmSandbox{h: h}, nil
}
func (h *vmHandler) Cleanup(context.Context, string, string, string) (int, error) { return 0, nil }
func (h *vmHandler) CleanupSandbox(context.Context, string) error                 { return nil }

type vmSandbox struct{ h *vmHandler }

func (s *vmSandbox) Create(ctx context.Context, req *handler.CreateRequest) (handler.Container, error) {
	r := handler.Rootfs{Readonly: req.Spec.Root != nil && req.Spec.Root.Readonly}
	if err := req.Policy.Rootfs(ctx, &r); err != nil {
		return nil, err
	}
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	s.h.rootfs = append(s.h.rootfs, r)
	s.h.pause = append(s.h.pause, req.PodSandbox)
	s.h.created++
	return &fakeContainer{init: newFakeProc(1), execs: map[string]*fakeProc{}}, nil
}

func (s *vmSandbox) Close(context.Context) error {
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	s.h.closed++
	s.h.closedAt = append(s.h.closedAt, s.h.created)
	return nil
}

// decisionHook is a hook at points whose decision is the given JSON
// (wasmhost/testdata/decision.wat answers with its configuration): a
// changing hook when the decision has a patch, else a checking one.
func decisionHook(t *testing.T, decision string, points ...string) config.Hook {
	t.Helper()
	path := filepath.Join(t.TempDir(), "decision.wasm")
	if err := os.WriteFile(path, wasmtest.WAT(t, filepath.Join("..", "wasmhost", "testdata", "decision.wat")), 0o644); err != nil {
		t.Fatal(err)
	}
	kind := config.HookCheck
	if strings.Contains(decision, `"patch"`) {
		kind = config.HookChange
	}
	h := config.Hook{Name: "scripted", Module: path, Points: points, Kind: kind, Mode: config.DefaultHookMode,
		OnError: config.DefaultHookOnError, Timeout: "5s", MemoryLimit: "16MiB"}
	if err := json.Unmarshal([]byte(decision), &h.Config); err != nil {
		t.Fatal(err)
	}
	return h
}

func virtPodReq(t *testing.T, cfg *config.Config, id, typ string) *handler.CreateRequest {
	req := podReq(t, cfg, id, map[string]string{annContainerType: typ, annSandboxID: "pod", AnnotationHandler: "virt"})
	req.Spec.Root = &specs.Root{Path: "rootfs"}
	req.Spec.Process = &specs.Process{Args: []string{"sh"}}
	return req
}

// TestSandboxResourcesReachHandler: the CRI's sandbox sizing annotations
// reach the handler that sets up the pod's sandbox (the VM's size, for
// virt); a pod without them gives none.
func TestSandboxResourcesReachHandler(t *testing.T) {
	ctx := context.Background()
	cfg := config.Default()
	cfg.Runtime.StateDir = t.TempDir()
	h := &vmHandler{}
	m := NewManager(fakeHandler("linux"), h)
	req := virtPodReq(t, &cfg, "pod", "sandbox")
	req.Spec.Annotations[annSandboxMemory] = "134217728"
	req.Spec.Annotations[annSandboxCPUQuota] = "150000"
	req.Spec.Annotations[annSandboxCPUPeriod] = "100000"
	if _, err := m.Create(ctx, req, &recorder{}); err != nil {
		t.Fatal(err)
	}
	if len(h.resources) != 1 || h.resources[0] == nil {
		t.Fatalf("the handler's sandbox got resources %v, want the pod's", h.resources)
	}
	r := h.resources[0]
	if r.Memory == nil || *r.Memory.Limit != 128<<20 || r.CPU == nil || *r.CPU.Quota != 150000 || *r.CPU.Period != 100000 {
		t.Errorf("resources %+v, want 128 MiB and 150000/100000", r)
	}

	cfg2 := config.Default()
	cfg2.Runtime.StateDir = t.TempDir()
	h2 := &vmHandler{}
	if _, err := NewManager(fakeHandler("linux"), h2).Create(ctx, virtPodReq(t, &cfg2, "pod", "sandbox"), &recorder{}); err != nil {
		t.Fatal(err)
	}
	if len(h2.resources) != 1 || h2.resources[0] != nil {
		t.Errorf("a pod without sizing: resources %v, want nil", h2.resources)
	}
}

// TestSandboxPartLifecycle: a pod's handler sandbox (the VM, for virt) is
// set up once, by its first container, and closed once, after the last
// container is gone, not before.
func TestSandboxPartLifecycle(t *testing.T) {
	ctx := context.Background()
	cfg := config.Default()
	cfg.Runtime.StateDir = t.TempDir()
	h := &vmHandler{}
	m := NewManager(fakeHandler("linux"), h)
	var tasks []*Task
	for i, id := range []string{"pod", "a", "b"} {
		typ := "container"
		if i == 0 {
			typ = "sandbox"
		}
		task, err := m.Create(ctx, virtPodReq(t, &cfg, id, typ), &recorder{})
		if err != nil {
			t.Fatalf("create %s: %v", id, err)
		}
		tasks = append(tasks, task)
	}
	if h.opened != 1 || h.created != 3 {
		t.Fatalf("%d sandboxes set up for %d containers, want 1 for 3", h.opened, h.created)
	}
	if !slices.Equal(h.pause, []bool{true, false, false}) {
		t.Errorf("PodSandbox of the creates %v, want only the CRI's sandbox container's set", h.pause)
	}
	for i, task := range tasks {
		if m.Deleted(ctx, task) != (i == len(tasks)-1) {
			t.Fatalf("deleting container %d of 3 took the sandbox down: %v", i+1, i != len(tasks)-1)
		}
		if want := 0; i < len(tasks)-1 && h.closed != want {
			t.Fatalf("sandbox closed with %d containers left", len(tasks)-1-i)
		}
	}
	if h.closed != 1 {
		t.Fatalf("sandbox closed %d times after its last container, want 1", h.closed)
	}
}

// TestSandboxVMHook: sandbox.vm is asked when the handler sets the VM up,
// a patch within the limits reaches the handler, one outside them and a
// denial fail the pod's first create and leave nothing behind.
func TestSandboxVMHook(t *testing.T) {
	tests := []struct {
		name     string
		decision string
		want     handler.VM
		err      string
	}{
		{"patched", `{"allow":true,"patch":[{"op":"replace","path":"/vm/vcpus","value":2},{"op":"replace","path":"/vm/memory_mib","value":512},{"op":"add","path":"/vm/kernel_params/-","value":"quiet"}]}`,
			handler.VM{Hypervisor: "builtin", VCPUs: 2, MemoryMiB: 512, KernelParams: []string{"nokaslr", "quiet"}}, ""},
		{"allowed as is", `{"allow":true}`,
			handler.VM{Hypervisor: "builtin", VCPUs: 1, MemoryMiB: 256, KernelParams: []string{"nokaslr"}}, ""},
		{"no vCPU", `{"allow":true,"patch":[{"op":"replace","path":"/vm/vcpus","value":0}]}`, handler.VM{}, "vcpus 0: want 1 to 254"},
		{"too little memory", `{"allow":true,"patch":[{"op":"replace","path":"/vm/memory_mib","value":16}]}`, handler.VM{}, "memory_mib 16"},
		{"two words in one parameter", `{"allow":true,"patch":[{"op":"add","path":"/vm/kernel_params/-","value":"init=/bin/sh quiet"}]}`, handler.VM{}, `kernel parameter "init=/bin/sh quiet"`},
		{"denied", `{"allow":false,"reason":"no VMs on this node"}`, handler.VM{}, "no VMs on this node"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			cfg := config.Default()
			cfg.Runtime.StateDir = t.TempDir()
			cfg.Hooks = []config.Hook{decisionHook(t, tc.decision, "sandbox.vm")}
			h := &vmHandler{}
			m := NewManager(fakeHandler("linux"), h)
			_, err := m.Create(ctx, virtPodReq(t, &cfg, "pod", "sandbox"), &recorder{})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("create: %v, want an error containing %q", err, tc.err)
				}
				if !errors.Is(err, errdefs.ErrInvalidArgument) && !errors.Is(err, errdefs.ErrPermissionDenied) {
					t.Errorf("create: %v is neither an invalid argument nor a denial", err)
				}
				if h.opened != 0 || h.created != 0 {
					t.Errorf("refused VM: %d sandboxes and %d containers created", h.opened, h.created)
				}
				if _, err := os.Stat(filepath.Join(cfg.Runtime.StateDir, "ns", "pod")); !os.IsNotExist(err) {
					t.Errorf("refused VM left its pod's state: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(h.vms) != 1 || h.vms[0].VCPUs != tc.want.VCPUs || h.vms[0].MemoryMiB != tc.want.MemoryMiB ||
				!slices.Equal(h.vms[0].KernelParams, tc.want.KernelParams) || h.vms[0].Hypervisor != tc.want.Hypervisor {
				t.Fatalf("VM %+v, want %+v", h.vms, tc.want)
			}
		})
	}
}

// TestContainerRootfsHook: container.rootfs is asked by the handler as it
// attaches a container's root filesystem, and its patch reaches it.
func TestContainerRootfsHook(t *testing.T) {
	ctx := context.Background()
	cfg := config.Default()
	cfg.Runtime.StateDir = t.TempDir()
	cfg.Hooks = []config.Hook{decisionHook(t, `{"allow":true,"patch":[{"op":"replace","path":"/readonly","value":true}]}`, "container.rootfs")}
	h := &vmHandler{}
	m := NewManager(fakeHandler("linux"), h)
	if _, err := m.Create(ctx, virtPodReq(t, &cfg, "pod", "sandbox"), &recorder{}); err != nil {
		t.Fatal(err)
	}
	if len(h.rootfs) != 1 || !h.rootfs[0].Readonly {
		t.Fatalf("rootfs attached as %+v, want read-only after the hook's patch", h.rootfs)
	}
}
