package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/containerd/containerd/api/types"
	_ "github.com/containerd/containerd/v2/core/runtime" // registers the features type with typeurl
	"github.com/containerd/typeurl/v2"
	"github.com/opencontainers/runtime-spec/specs-go/features"
	"google.golang.org/protobuf/proto"

	"github.com/huskrt/husk/test/devenv"
)

// shimInfo runs the bench's husk shim as containerd does for a runtime
// entry without options (`-info`, nothing on stdin), with husk's
// configuration in the file config, and returns its features document.
func shimInfo(t *testing.T, config string) *features.Features {
	t.Helper()
	cmd := exec.Command(filepath.Join(suite.Dir, "bin", "containerd-shim-husk-v2"), "-info")
	cmd.Env = append(os.Environ(), "HUSK_CONFIG="+config)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("-info: %v: %s", err, stderr.String())
	}
	var info types.RuntimeInfo
	if err := proto.Unmarshal(out, &info); err != nil {
		t.Fatalf("-info's answer: %v", err)
	}
	if info.Features == nil {
		t.Fatal("-info answered no features")
	}
	v, err := typeurl.UnmarshalAny(info.Features)
	if err != nil {
		t.Fatalf("-info's features: %v", err)
	}
	f, ok := v.(*features.Features)
	if !ok {
		t.Fatalf("-info's features are a %T", v)
	}
	return f
}

// TestLinuxFeaturesAreRuncs compares husk's -info for a Linux entry with
// `runc features` of the baseline runc (the same libcontainer version): the
// same document but for what husk does not do (rootless systemd cgroups)
// and the annotations, which name each implementation.
func TestLinuxFeaturesAreRuncs(t *testing.T) {
	needBench(t)
	root, err := devenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(filepath.Join(root, ".tools", "bin", "runc"), "features").Output()
	if err != nil {
		t.Fatalf("runc features: %v", err)
	}
	var runcF features.Features
	if err := json.Unmarshal(out, &runcF); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(cfg, []byte("[runtime]\ndefault_handler = \"linux\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	huskF := shimInfo(t, cfg)
	if huskF.Annotations["io.husk.handler"] != "linux" {
		t.Errorf("annotations %v: not the linux handler's", huskF.Annotations)
	}
	if huskF.Linux == nil || huskF.Linux.Cgroup == nil || huskF.Linux.Cgroup.SystemdUser == nil || *huskF.Linux.Cgroup.SystemdUser {
		t.Errorf("husk reports rootless systemd cgroups, which it never uses")
	}
	// What may differ: the annotations, the unsafe annotation list, and
	// systemdUser (checked above).
	for _, f := range []*features.Features{&runcF, huskF} {
		f.Annotations, f.PotentiallyUnsafeConfigAnnotations = nil, nil
		if f.Linux != nil && f.Linux.Cgroup != nil {
			f.Linux.Cgroup.SystemdUser = nil
		}
	}
	if !reflect.DeepEqual(&runcF, huskF) {
		a, _ := json.MarshalIndent(&runcF, "", " ")
		b, _ := json.MarshalIndent(huskF, "", " ")
		t.Errorf("husk's Linux features differ from runc's:\nrunc: %s\nhusk: %s", a, b)
	}
}
