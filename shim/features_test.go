package shim

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/containerd/containerd/api/types/runc/options"
	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
	"github.com/containerd/errdefs"
	"github.com/containerd/typeurl/v2"
	"github.com/opencontainers/runtime-spec/specs-go/features"
	"google.golang.org/protobuf/proto"

	"github.com/huskrt/husk/runtime/config"
	"github.com/huskrt/husk/runtime/linux"
)

// infoStdin is what containerd writes to `-info`'s stdin for a runtime
// entry with options v.
func infoStdin(t *testing.T, v any) *bytes.Reader {
	t.Helper()
	a, err := typeurl.MarshalAnyToProto(v)
	if err != nil {
		t.Fatal(err)
	}
	b, err := proto.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.NewReader(b)
}

// infoFeatures runs Manager.Info on stdin and returns its features.
func infoFeatures(t *testing.T, stdin *bytes.Reader) *features.Features {
	t.Helper()
	info, err := Manager{}.Info(context.Background(), stdin)
	if err != nil {
		t.Fatalf("Info: %v", err)
	}
	if info.Name != RuntimeName || info.Version == nil {
		t.Errorf("name %q, version %v", info.Name, info.Version)
	}
	if info.Features == nil {
		t.Fatal("no features")
	}
	v, err := typeurl.UnmarshalAny(info.Features)
	if err != nil {
		t.Fatalf("features: %v", err)
	}
	f, ok := v.(*features.Features)
	if !ok {
		t.Fatalf("features of type %T", v)
	}
	return f
}

// hermeticConfig points $HUSK_CONFIG at a file with body, so that no
// /etc/husk of the machine applies.
func hermeticConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(config.EnvPath, p)
	return p
}

// crisUserns is the CRI's test for a handler's user namespace support
// (containerd's supportsCRIUserns): the user namespace and idmapped mounts.
func crisUserns(f *features.Features) bool {
	if f.Linux == nil || !slices.Contains(f.Linux.Namespaces, "user") {
		return false
	}
	m := f.Linux.MountExtensions
	return m != nil && m.IDMap != nil && m.IDMap.Enabled != nil && *m.IDMap.Enabled
}

// TestInfoDescribesTheEntrysDefaultHandler checks that -info answers with
// the features of the handler the runtime entry's configuration runs pods
// with, whichever way the options name that configuration; user namespaces
// only for entries on which the CRI can start user-namespaced containers
// (no options, or runc's: runcOptionsFit).
func TestInfoDescribesTheEntrysDefaultHandler(t *testing.T) {
	setattr := linux.MountSetattrWorks()
	virtFile := filepath.Join(t.TempDir(), "virt.toml")
	if err := os.WriteFile(virtFile, []byte("[runtime]\ndefault_handler = \"virt\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	inline := func(handler string) func() *bytes.Reader {
		return func() *bytes.Reader {
			return infoStdin(t, &runtimeoptions.Options{ConfigBody: []byte("[runtime]\ndefault_handler = \"" + handler + "\"\n")})
		}
	}
	tests := []struct {
		name    string
		envFile string // $HUSK_CONFIG's default_handler
		stdin   func() *bytes.Reader
		handler string
		rro     bool
		userns  bool
	}{
		{"no options: $HUSK_CONFIG", "linux", func() *bytes.Reader { return bytes.NewReader(nil) }, "linux", setattr, setattr},
		{"no options: $HUSK_CONFIG virt", "virt", func() *bytes.Reader { return bytes.NewReader(nil) }, "virt", true, false},
		{"no options: $HUSK_CONFIG wasm", "wasm", func() *bytes.Reader { return bytes.NewReader(nil) }, "wasm", setattr, setattr},
		// runc's options type: husk's configuration from $HUSK_CONFIG.
		{"runc options", "linux", func() *bytes.Reader { return infoStdin(t, &options.Options{SystemdCgroup: true}) }, "linux", setattr, setattr},
		{"ConfigPath", "linux", func() *bytes.Reader {
			return infoStdin(t, &runtimeoptions.Options{ConfigPath: virtFile})
		}, "virt", true, false},
		// An options table: the CRI cannot start user-namespaced
		// containers on the entry.
		{"inline linux", "virt", inline("linux"), "linux", setattr, false},
		{"inline wasm", "virt", inline("wasm"), "wasm", setattr, false},
		{"inline virt", "linux", inline("virt"), "virt", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hermeticConfig(t, "[runtime]\ndefault_handler = \""+tt.envFile+"\"\n")
			f := infoFeatures(t, tt.stdin())
			if got := f.Annotations[AnnotationHandler]; got != tt.handler {
				t.Errorf("handler %q, want %q", got, tt.handler)
			}
			if got := slices.Contains(f.MountOptions, "rro"); got != tt.rro {
				t.Errorf("rro reported: %v, want %v", got, tt.rro)
			}
			if got := crisUserns(f); got != tt.userns {
				t.Errorf("CRI user namespaces: %v, want %v", got, tt.userns)
			}
			if !slices.Contains(f.MountOptions, "ro") || !slices.Contains(f.Linux.Namespaces, "pid") {
				t.Errorf("basic features missing: %v, %v", f.MountOptions, f.Linux.Namespaces)
			}
		})
	}
}

func TestInfoRefusesBadOptions(t *testing.T) {
	hermeticConfig(t, "")
	_, err := Manager{}.Info(context.Background(), bytes.NewReader([]byte{0xff, 0xff, 0xff}))
	if !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("garbage options: %v", err)
	}
	_, err = Manager{}.Info(context.Background(), infoStdin(t, &runtimeoptions.Options{ConfigBody: []byte("[runtime]\nno_such_key = 1\n")}))
	if err == nil {
		t.Error("a configuration with an unknown key: no error")
	}
	_, err = Manager{}.Info(context.Background(), bytes.NewReader(make([]byte, maxInfoOptions+1)))
	if !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("options of %d bytes: %v", maxInfoOptions+1, err)
	}
}

// TestVirtFeaturesReportNoHostOnlyFeature pins what the VM handler does not
// honour: hooks, recursive attributes, idmapped mounts, user namespaces,
// systemd cgroups.
func TestVirtFeaturesReportNoHostOnlyFeature(t *testing.T) {
	f, err := handlerFeatures(config.HandlerVirt)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range linux.RecursiveAttrs() {
		if o != "rro" && slices.Contains(f.MountOptions, o) {
			t.Errorf("mount option %q reported", o)
		}
	}
	if len(f.Hooks) != 0 || slices.Contains(f.Linux.Namespaces, "user") || crisUserns(f) || *f.Linux.Cgroup.Systemd || *f.Linux.Cgroup.V1 {
		t.Errorf("host-only features reported: hooks %v, namespaces %v, cgroup %+v", f.Hooks, f.Linux.Namespaces, f.Linux.Cgroup)
	}
	if _, err := handlerFeatures("nosuch"); !errors.Is(err, errdefs.ErrNotImplemented) {
		t.Errorf("unknown handler: %v", err)
	}
}
