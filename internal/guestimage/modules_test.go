package guestimage

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
)

func TestResolve(t *testing.T) {
	tree, err := OpenTree(testTree(t))
	if err != nil {
		t.Fatal(err)
	}
	if tree.Release != fakeRelease {
		t.Errorf("release %q, want %q", tree.Release, fakeRelease)
	}
	for _, tc := range []struct {
		name    string
		wanted  []string
		order   []string // module names, in load order
		is      error    // the error's class, if any
		message []string // what the error message names
	}{
		{name: "dependencies first", wanted: []string{"a"}, order: []string{"c", "b", "a"}},
		{name: "each once", wanted: []string{"b", "a", "c"}, order: []string{"c", "b", "a"}},
		{name: "built in needs nothing", wanted: []string{"ext4", "crc16"}, order: nil},
		{name: "dash spelling", wanted: []string{"dash-mod"}, order: []string{"c", "dash_mod"}},
		{name: "underscore spelling", wanted: []string{"dash_mod"}, order: []string{"c", "dash_mod"}},
		{name: "gzip", wanted: []string{"zipped"}, order: []string{"c", "zipped"}},
		{name: "none", wanted: nil, order: nil},
		{name: "missing", wanted: []string{"a", "ghost"}, is: errdefs.ErrNotFound, message: []string{`"ghost"`, fakeRelease}},
		{name: "missing dependency", wanted: []string{"needs-ghost"}, is: errdefs.ErrNotFound, message: []string{"ghost", "needed by needs_ghost"}},
		{name: "cycle", wanted: []string{"cyc1"}, message: []string{"cycle", "cyc1 -> cyc2 -> cyc1"}},
		{name: "xz refused", wanted: []string{"squeezed"}, is: errdefs.ErrNotImplemented, message: []string{"squeezed.ko.xz"}},
		{name: "ambiguous", wanted: []string{"twin"}, message: []string{"ambiguous"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mods, err := tree.Resolve(tc.wanted)
			if tc.is != nil || tc.message != nil {
				if err == nil {
					t.Fatalf("no error; resolved %v", mods)
				}
				if tc.is != nil && !errors.Is(err, tc.is) {
					t.Errorf("error %v is not %v", err, tc.is)
				}
				for _, s := range tc.message {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not say %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range mods {
				got = append(got, m.Name)
			}
			if !slices.Equal(got, tc.order) {
				t.Errorf("order %v, want %v", got, tc.order)
			}
		})
	}
}

func TestOpenTreeRejectsNonPackage(t *testing.T) {
	_, err := OpenTree(t.TempDir())
	if !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("empty dir: %v, want NotFound", err)
	}
}

func TestModuleName(t *testing.T) {
	for _, tc := range []struct {
		path, name string
		ok         bool
	}{
		{"kernel/fs/ext4/ext4.ko", "ext4", true},
		{"drivers/char/hw_random/virtio-rng.ko", "virtio_rng", true},
		{"x/vsock.ko.zst", "vsock", true},
		{"x/vsock.ko.xz", "vsock", true},
		{"modules.order", "", false},
		{"x/README", "", false},
	} {
		name, ok := moduleName(tc.path)
		if name != tc.name || ok != tc.ok {
			t.Errorf("moduleName(%q) = %q, %v; want %q, %v", tc.path, name, ok, tc.name, tc.ok)
		}
	}
}

func TestDependsOf(t *testing.T) {
	for _, tc := range []struct {
		name    string
		modinfo []string
		want    []string
	}{
		{"several", []string{"license=GPL", "depends=virtio,virtio_ring", "name=virtio_blk"}, []string{"virtio", "virtio_ring"}},
		{"empty", []string{"depends=", "name=overlay"}, nil},
		{"absent", []string{"name=old"}, nil},
		{"padding", []string{"alias=x", "", "", "depends=vsock"}, []string{"vsock"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := dependsOf(fakeModule(t, tc.modinfo...))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("depends %v, want %v", got, tc.want)
			}
		})
	}
	if _, err := dependsOf([]byte("not an ELF object")); err == nil {
		t.Error("garbage parsed")
	}
}
