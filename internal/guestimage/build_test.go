package guestimage

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
)

// buildFake builds an image from the fake tree with a fake agent.
func buildFake(t *testing.T, o Options) (*Manifest, Options) {
	t.Helper()
	if o.KernelDir == "" {
		o.KernelDir = testTree(t)
	}
	if o.Agent == "" {
		o.Agent = filepath.Join(t.TempDir(), "husk-agent")
		if err := os.WriteFile(o.Agent, []byte("\x7fELF the agent"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if o.OutDir == "" {
		o.OutDir = filepath.Join(t.TempDir(), "guest")
	}
	if o.Modules == nil {
		o.Modules = []string{"ext4", "a", "dash-mod"}
	}
	m, err := Build(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return m, o
}

func TestBuildLayout(t *testing.T) {
	m, o := buildFake(t, Options{})
	b, err := os.ReadFile(filepath.Join(o.OutDir, InitrdFile))
	if err != nil {
		t.Fatal(err)
	}
	files := readNewc(t, b)
	for _, tc := range []struct {
		name string
		mode uint32
		data string // checked if not empty
	}{
		{"init", 0o100755, "\x7fELF the agent"},
		{"proc", 0o040755, ""},
		{"sys", 0o040755, ""},
		{"dev", 0o040755, ""},
		{"run", 0o040755, ""},
		{"tmp", 0o040755, ""},
		{"mnt", 0o040755, ""},
		{"etc", 0o040755, ""},
		{"lib/modules/husk", 0o040755, ""},
		{"lib/modules/husk/load-order", 0o100644, "c.ko\nb.ko\na.ko\ndash_mod.ko\n"},
		{"lib/modules/husk/a.ko", 0o100644, ""},
		{"lib/modules/husk/dash_mod.ko", 0o100644, ""},
	} {
		e, ok := files[tc.name]
		if !ok {
			t.Errorf("%s missing", tc.name)
			continue
		}
		if e.mode != tc.mode {
			t.Errorf("%s: mode %o, want %o", tc.name, e.mode, tc.mode)
		}
		if tc.data != "" && string(e.data) != tc.data {
			t.Errorf("%s: %q, want %q", tc.name, e.data, tc.data)
		}
	}
	if c := files["dev/console"]; c.mode&0o170000 != 0o020000 || c.major != 5 || c.minor != 1 {
		t.Errorf("dev/console: mode %o, %d:%d; want a char device 5:1", c.mode, c.major, c.minor)
	}
	if _, err := dependsOf(files["lib/modules/husk/a.ko"].data); err != nil {
		t.Errorf("a.ko is not the module: %v", err)
	}
	if _, ok := files["lib/modules/husk/ext4.ko"]; ok {
		t.Error("built-in ext4 copied")
	}

	if m.Package != "linux-image-"+fakeRelease || m.Version != "6.0.1-1" || m.Release != fakeRelease {
		t.Errorf("package %s %s release %s", m.Package, m.Version, m.Release)
	}
	if want := []string{"c.ko", "b.ko", "a.ko", "dash_mod.ko"}; !slices.Equal(m.Modules, want) {
		t.Errorf("modules %v, want %v", m.Modules, want)
	}
	if !slices.Equal(m.Builtin, []string{"ext4"}) {
		t.Errorf("builtin %v", m.Builtin)
	}
	if m.Agent.SHA256 != sum([]byte("\x7fELF the agent")) || m.Agent.Name != o.Agent {
		t.Errorf("agent %+v", m.Agent)
	}
	if m.Built.IsZero() {
		t.Error("no build time")
	}
	entries, _ := os.ReadDir(o.OutDir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{InitrdFile, ManifestFile, KernelFile}; !slices.Equal(names, want) {
		t.Errorf("out dir holds %v, want %v (no temporary files)", names, want)
	}
}

func TestBuildOptions(t *testing.T) {
	m, _ := buildFake(t, Options{Package: "linux-image-custom", Version: "1.2"})
	if m.Package != "linux-image-custom" || m.Version != "1.2" {
		t.Errorf("package %s %s", m.Package, m.Version)
	}
	_, err := Build(context.Background(), Options{KernelDir: testTree(t), Agent: "/nonexistent/agent", OutDir: t.TempDir(), Modules: []string{"a"}})
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing agent: %v", err)
	}
	_, err = Build(context.Background(), Options{OutDir: t.TempDir()})
	if !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("no kernel dir: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	agent := filepath.Join(t.TempDir(), "agent")
	os.WriteFile(agent, []byte("x"), 0o755)
	_, err = Build(ctx, Options{KernelDir: testTree(t), Agent: agent, OutDir: t.TempDir(), Modules: []string{"a"}})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

func TestLoad(t *testing.T) {
	m, o := buildFake(t, Options{})
	got, err := Load(o.OutDir)
	if err != nil {
		t.Fatal(err)
	}
	if got.Initrd != m.Initrd || got.Kernel != m.Kernel || !got.Built.Equal(m.Built) || !slices.Equal(got.Modules, m.Modules) {
		t.Errorf("loaded %+v, built %+v", got, m)
	}

	for _, tc := range []struct {
		name   string
		change func(dir string) error
		is     error
	}{
		{"initrd changed", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, InitrdFile), []byte("other"), 0o644)
		}, errdefs.ErrDataLoss},
		{"kernel changed", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, KernelFile), []byte("other"), 0o644)
		}, errdefs.ErrDataLoss},
		{"kernel gone", func(dir string) error { return os.Remove(filepath.Join(dir, KernelFile)) }, os.ErrNotExist},
		{"manifest gone", func(dir string) error { return os.Remove(filepath.Join(dir, ManifestFile)) }, os.ErrNotExist},
		{"file outside", func(dir string) error { return rewriteManifest(dir, `"name": "vmlinuz"`, `"name": "../vmlinuz"`) }, nil},
		{"garbage", func(dir string) error { return os.WriteFile(filepath.Join(dir, ManifestFile), []byte("{"), 0o644) }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, o := buildFake(t, Options{})
			if err := tc.change(o.OutDir); err != nil {
				t.Fatal(err)
			}
			_, err := Load(o.OutDir)
			if err == nil {
				t.Fatal("loaded")
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("%v is not %v", err, tc.is)
			}
		})
	}
}

func rewriteManifest(dir, old, new string) error {
	p := filepath.Join(dir, ManifestFile)
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	if !strings.Contains(string(b), old) {
		return errors.New("manifest lacks " + old)
	}
	return os.WriteFile(p, []byte(strings.Replace(string(b), old, new, 1)), 0o644)
}

func TestPackageOf(t *testing.T) {
	base := t.TempDir()
	for _, tc := range []struct {
		dir, pkg, version string
		ok                bool
	}{
		{"linux-image-6.1.0-57-cloud-amd64_6.1.192-3", "linux-image-6.1.0-57-cloud-amd64", "6.1.192-3", true},
		{"linux-image-x_1:2.0~rc1+b1", "linux-image-x", "1:2.0~rc1+b1", true},
		{"kernel", "", "", false},
		{"_1.0", "", "", false},
		{"pkg_", "", "", false},
	} {
		dir := filepath.Join(base, tc.dir)
		os.Mkdir(dir, 0o755)
		pkg, version, err := packageOf(dir)
		if (err == nil) != tc.ok || pkg != tc.pkg || version != tc.version {
			t.Errorf("packageOf(%q) = %q, %q, %v", tc.dir, pkg, version, err)
		}
	}
	// Through the cache's symlink.
	if err := os.Symlink("linux-image-6.1.0-57-cloud-amd64_6.1.192-3", filepath.Join(base, CurrentLink)); err != nil {
		t.Fatal(err)
	}
	if pkg, _, err := packageOf(filepath.Join(base, CurrentLink)); err != nil || pkg != "linux-image-6.1.0-57-cloud-amd64" {
		t.Errorf("through %s: %q, %v", CurrentLink, pkg, err)
	}
}
