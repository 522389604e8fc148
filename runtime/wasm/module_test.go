package wasm

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSplitFunc(t *testing.T) {
	for _, tt := range []struct{ in, file, fn string }{
		{"/app.wasm", "/app.wasm", ""},
		{"/app.wasm#run", "/app.wasm", "run"},
		{"app.wasm#", "app.wasm#", ""},
		{"#run", "#run", ""},
		{"/a#b.wasm#f", "/a#b.wasm", "f"},
	} {
		if f, fn := splitFunc(tt.in); f != tt.file || fn != tt.fn {
			t.Errorf("splitFunc(%q) = %q, %q; want %q, %q", tt.in, f, fn, tt.file, tt.fn)
		}
	}
}

// TestLookupConfined (R6, shim side): the shim reads a container's module
// from the rootfs on the host; "..", absolute symlinks and relative
// symlinks are resolved inside the rootfs, never reaching the host file
// next to it.
func TestLookupConfined(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "rootfs")
	outside := filepath.Join(dir, "outside.wasm")
	must(t, os.WriteFile(outside, readTestdata(t, "hello.wasm"), 0o644))
	must(t, os.MkdirAll(filepath.Join(root, "bin"), 0o755))
	must(t, os.WriteFile(filepath.Join(root, "bin", "app.wasm"), readTestdata(t, "hello.wasm"), 0o755))
	must(t, os.Symlink(outside, filepath.Join(root, "bin", "abs")))
	must(t, os.Symlink("../../../../../../.."+outside, filepath.Join(root, "bin", "rel")))
	must(t, os.Symlink("app.wasm", filepath.Join(root, "bin", "ok")))
	must(t, os.Mkdir(filepath.Join(root, "bin", "dir"), 0o755))

	for _, tt := range []struct {
		file string
		env  []string
		cwd  string
		want string // container path found, "" for not found
	}{
		{"/bin/app.wasm", nil, "/", "/bin/app.wasm"},
		{"app.wasm", []string{"PATH=/usr/bin:/bin"}, "/", "/bin/app.wasm"},
		{"app.wasm", nil, "/", "/bin/app.wasm"}, // default PATH
		{"./app.wasm", nil, "/bin", "/bin/app.wasm"},
		{"/bin/ok", nil, "/", "/bin/ok"},
		{outside, nil, "/", ""},
		{"../../../../../../.." + outside, nil, "/bin", ""},
		{"/bin/abs", nil, "/", ""},
		{"/bin/rel", nil, "/", ""},
		{"/bin/dir", nil, "/", ""},
	} {
		f, p, err := lookup(root, tt.file, tt.env, tt.cwd)
		if tt.want == "" {
			if err == nil {
				f.Close()
				t.Errorf("lookup(%q) found %s, want nothing", tt.file, p)
			}
			continue
		}
		if err != nil {
			t.Errorf("lookup(%q): %v", tt.file, err)
			continue
		}
		f.Close()
		if p != tt.want {
			t.Errorf("lookup(%q) = %s, want %s", tt.file, p, tt.want)
		}
	}
	_, _, err := lookup(root, "/bin/abs", nil, "/")
	if !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("lookup of an escaping link: %v, want not found", err)
	}
}

func TestModuleImports(t *testing.T) {
	imps, err := moduleImports(readTestdata(t, "badimport.wasm"))
	if err != nil || len(imps) != 1 || imps[0].String() != "function env.husk_missing_function" {
		t.Fatalf("imports %v, %v", imps, err)
	}
	if err := checkImports("/x.wasm", readTestdata(t, "hello.wasm")); err != nil {
		t.Fatalf("hello: %v", err)
	}
	err = checkImports("/x.wasm", readTestdata(t, "badimport.wasm"))
	if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "imports function env.husk_missing_function, which husk does not provide") {
		t.Fatalf("badimport: %v", err)
	}
	for name, b := range map[string]string{
		"component":  "\x00asm\x0d\x00\x01\x00",
		"truncated":  "\x00asm\x01\x00\x00\x00\x02\x05\x01",
		"no magic":   "\x7fELF\x02\x01\x01\x00",
		"short":      "\x00as",
		"huge count": "\x00asm\x01\x00\x00\x00\x02\x05\xff\xff\xff\xff\x0f",
	} {
		if _, err := moduleImports([]byte(b)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// FuzzModuleImports: the import parser reads untrusted bytes in the shim;
// it must never panic or loop.
func FuzzModuleImports(f *testing.F) {
	for _, n := range []string{"hello.wasm", "multi.wasm", "trap.wasm", "badimport.wasm", "spin.wasm"} {
		f.Add(readTestdata(f, n))
	}
	f.Add([]byte("\x00asm\x01\x00\x00\x00\x02\x07\x01\x01a\x01b\x02\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = moduleImports(b)
	})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestLookupInBindMount: at create, a module in a bind mount's source is
// found under the mount's destination, still confined to the source.
func TestLookupInBindMount(t *testing.T) {
	dir := t.TempDir()
	root, vol := filepath.Join(dir, "rootfs"), filepath.Join(dir, "vol")
	must(t, os.MkdirAll(root, 0o755))
	must(t, os.MkdirAll(vol, 0o755))
	must(t, os.WriteFile(filepath.Join(vol, "m.wasm"), readTestdata(t, "hello.wasm"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "secret.wasm"), readTestdata(t, "hello.wasm"), 0o644))
	must(t, os.Symlink("../secret.wasm", filepath.Join(vol, "up")))
	binds := bindRoots([]specs.Mount{
		{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs"},
		{Destination: "/mnt/vol/", Type: "bind", Source: vol, Options: []string{"rbind", "ro"}},
	})
	f, p, err := lookupMounted(root, binds, "/mnt/vol/m.wasm", nil, "/")
	if err != nil || p != "/mnt/vol/m.wasm" {
		t.Fatalf("module in a volume: %q, %v", p, err)
	}
	f.Close()
	if f, _, err := lookupMounted(root, binds, "/mnt/vol/up", nil, "/"); err == nil {
		f.Close()
		t.Fatal("a link out of the volume was followed")
	}
}
