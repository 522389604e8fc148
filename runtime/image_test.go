package runtime

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/huskrt/husk/runtime/config"
	"github.com/huskrt/husk/runtime/handler"
)

// imageRecord is a fake containerd record read (HookOptions.ImageOf).
type imageRecord struct {
	name  string
	err   error
	block bool // answer only when the context ends
	reads atomic.Int32
}

func (r *imageRecord) ImageOf(ctx context.Context, namespace, id string) (string, error) {
	r.reads.Add(1)
	if namespace != "ns" || id != "c" {
		return "", errdefs.ErrNotFound
	}
	if r.block {
		<-ctx.Done()
		return "", ctx.Err()
	}
	return r.name, r.err
}

// createImaged creates container "c" under hooks whose JSON Patch tests
// that /container/image is want (JSON) at container.create and at
// process.exec, reading the record through rec; ann are the spec's
// annotations. A test that fails fails the hook, which denies.
func createImaged(t *testing.T, rec *imageRecord, ann map[string]string, want string) (*Manager, *Task, error) {
	t.Helper()
	cfg := config.Default()
	cfg.Runtime.StateDir = t.TempDir()
	cfg.Hooks = []config.Hook{decisionHook(t, `{"allow":true,"patch":[{"op":"test","path":"/container/image","value":`+want+`}]}`,
		"container.create", "process.exec")}
	m := NewManager(&podHandler{name: "linux"})
	if rec != nil {
		m.HookOptions.ImageOf = rec.ImageOf
	}
	req := podReq(t, &cfg, "c", ann)
	req.Spec.Process = &specs.Process{Args: []string{"sleep", "1000"}}
	req.Spec.Root = &specs.Root{Path: "rootfs"}
	task, err := m.Create(context.Background(), req, &recorder{})
	if err == nil {
		t.Cleanup(func() { m.Deleted(context.Background(), task) })
	}
	return m, task, err
}

// TestHookImageFromRecord: the hooks' events name the image containerd
// recorded for the container, whoever created it, before the CRI's
// annotation; the CRI's annotation when the record names none (the CRI
// records none); null when neither does or the record cannot be read.
// Process events carry the image found at create.
func TestHookImageFromRecord(t *testing.T) {
	const annImage = "io.kubernetes.cri.image-name"
	for _, tt := range []struct {
		name string
		rec  *imageRecord
		ann  map[string]string
		want string
	}{
		{"record", &imageRecord{name: "husk.local/busybox:latest"}, nil, `"husk.local/busybox:latest"`},
		{"record before a forged annotation", &imageRecord{name: "husk.local/busybox:latest"},
			map[string]string{annImage: "registry.example.com/allowed:1"}, `"husk.local/busybox:latest"`},
		{"CRI: the record names none", &imageRecord{}, map[string]string{annImage: "docker.io/library/nginx:1.27"}, `"docker.io/library/nginx:1.27"`},
		{"no record, no annotation", &imageRecord{}, nil, `null`},
		{"unreadable record", &imageRecord{err: errors.New("connection refused")}, nil, `null`},
		{"unreadable record, CRI", &imageRecord{err: errors.New("connection refused")},
			map[string]string{annImage: "docker.io/library/nginx:1.27"}, `"docker.io/library/nginx:1.27"`},
		{"no reader", nil, nil, `null`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// The hook's test holds for the expected image and nothing else.
			if _, _, err := createImaged(t, tt.rec, tt.ann, `"something else"`); !errors.Is(err, errdefs.ErrPermissionDenied) {
				t.Fatalf("a test for another image passed: %v", err)
			}
			_, task, err := createImaged(t, tt.rec, tt.ann, tt.want)
			if err != nil {
				t.Fatalf("container.create did not see image %s: %v", tt.want, err)
			}
			if _, err := task.Start(context.Background(), ""); err != nil {
				t.Fatal(err)
			}
			if err := task.Exec(context.Background(), "e1", &specs.Process{Args: []string{"true"}}, handler.Stdio{}); err != nil {
				t.Fatalf("process.exec did not see image %s: %v", tt.want, err)
			}
		})
	}
}

// TestHookImageDeadline: a containerd that does not answer holds up a
// create for imageTimeout at most; the image is then unknown.
func TestHookImageDeadline(t *testing.T) {
	start := time.Now()
	_, _, err := createImaged(t, &imageRecord{block: true}, nil, `null`)
	took := time.Since(start)
	if err != nil {
		t.Fatalf("create with an unanswered record read: %v", err)
	}
	if took > imageTimeout+2*time.Second {
		t.Fatalf("create took %v with an unanswered record read; the read's deadline is %v", took, imageTimeout)
	}
}

// TestHookImageOnlyWithHooks: a pod without hooks never reads the record.
func TestHookImageOnlyWithHooks(t *testing.T) {
	rec := &imageRecord{name: "husk.local/busybox:latest"}
	cfg := config.Default()
	cfg.Runtime.StateDir = t.TempDir()
	m := NewManager(&podHandler{name: "linux"})
	m.HookOptions.ImageOf = rec.ImageOf
	req := podReq(t, &cfg, "c", nil)
	req.Spec.Process = &specs.Process{Args: []string{"true"}}
	req.Spec.Root = &specs.Root{Path: "rootfs"}
	task, err := m.Create(context.Background(), req, &recorder{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Deleted(context.Background(), task)
	if n := rec.reads.Load(); n != 0 {
		t.Fatalf("a pod without hooks read the container's record %d times", n)
	}
	if c := task.hooks.container; c.ID != "c" || c.Image != "" {
		t.Fatalf("task's container is %+v, want c with its image not looked up", c)
	}
}

// TestHookViewAtLaterPoints: process.exec and container.update name the
// container and its pod as container.create did: its image, handler and
// annotations, not an empty stand-in.
func TestHookViewAtLaterPoints(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name string
		test string // the hook's test ops
		ok   bool
	}{
		{"as at create", `{"op":"test","path":"/container/image","value":"husk.local/busybox:latest"},` +
			`{"op":"test","path":"/sandbox/annotations/io.husk~1team","value":"web"},` +
			`{"op":"test","path":"/sandbox/handler","value":"linux"}`, true},
		{"not another", `{"op":"test","path":"/sandbox/annotations","value":{}}`, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.Runtime.StateDir = t.TempDir()
			cfg.Hooks = []config.Hook{decisionHook(t, `{"allow":true,"patch":[`+tt.test+`]}`, "process.exec", "container.update")}
			m := NewManager(&podHandler{name: "linux"})
			m.HookOptions.ImageOf = (&imageRecord{name: "husk.local/busybox:latest"}).ImageOf
			req := podReq(t, &cfg, "c", map[string]string{"io.husk/team": "web"})
			req.Spec.Process = &specs.Process{Args: []string{"sleep", "1000"}}
			req.Spec.Root = &specs.Root{Path: "rootfs"}
			task, err := m.Create(ctx, req, &recorder{})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Deleted(ctx, task)
			if _, err := task.Start(ctx, ""); err != nil {
				t.Fatal(err)
			}
			execErr := task.Exec(ctx, "e1", &specs.Process{Args: []string{"true"}}, handler.Stdio{})
			limit := int64(64 << 20)
			updateErr := task.Update(ctx, &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}})
			for what, err := range map[string]error{"process.exec": execErr, "container.update": updateErr} {
				if (err == nil) != tt.ok {
					t.Errorf("%s: %v, want allowed %v", what, err, tt.ok)
				}
			}
		})
	}
}
