package persist

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/containerd/errdefs"
)

func TestRoundTripAndModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ns", "sb")
	s := &Sandbox{ID: "sb", Namespace: "ns", Handler: "linux", ShimPid: 42}
	s.AddContainer(Container{ID: "sb", Bundle: "/b/sb", Handler: "linux"})
	s.AddContainer(Container{ID: "c1", Bundle: "/b/c1", Handler: "linux"})
	s.AddContainer(Container{ID: "c1", Bundle: "/b/c1-again", Handler: "linux"})
	if err := Write(dir, s); err != nil {
		t.Fatal(err)
	}
	got, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != Version || got.ID != "sb" || got.ShimPid != 42 || len(got.Containers) != 2 || got.Containers[1].Bundle != "/b/c1-again" {
		t.Fatalf("read back %+v", got)
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v, want 0700", fi.Mode().Perm())
	}
	if fi, _ := os.Stat(filepath.Join(dir, stateFile)); fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v, want 0600", fi.Mode().Perm())
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("temp files left: %v", ents)
	}
	got.RemoveContainer("c1")
	if len(got.Containers) != 1 {
		t.Fatalf("remove: %+v", got.Containers)
	}
}

func TestReadErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Read(dir); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
	os.WriteFile(filepath.Join(dir, stateFile), []byte("{garbage"), 0o600)
	if _, err := Read(dir); !errors.Is(err, errdefs.ErrDataLoss) {
		t.Fatalf("garbage: %v", err)
	}
	os.WriteFile(filepath.Join(dir, stateFile), []byte(`{"version":99}`), 0o600)
	if _, err := Read(dir); !errors.Is(err, errdefs.ErrNotImplemented) {
		t.Fatalf("future version: %v", err)
	}
}

func TestBundleRef(t *testing.T) {
	b := t.TempDir()
	if _, err := ReadBundleRef(b); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
	want := BundleRef{SandboxID: "sb", StateDir: "/run/husk/ns/sb"}
	if err := WriteBundleRef(b, want); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadBundleRef(b); err != nil || got != want {
		t.Fatalf("got %+v, %v", got, err)
	}
}

// TestUpdateSerialises: concurrent removals (delete commands for every
// container of a dead shim's pod) lose none of each other's changes, and
// the last one removes the directory.
func TestUpdateSerialises(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sb")
	s := &Sandbox{ID: "sb"}
	const n = 20
	for i := 0; i < n; i++ {
		s.AddContainer(Container{ID: string(rune('a' + i))})
	}
	if err := Write(dir, s); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		id := string(rune('a' + i))
		go func() {
			errs <- Update(dir, func(s *Sandbox) (bool, error) {
				if s == nil {
					return false, errors.New("record vanished early")
				}
				s.RemoveContainer(id)
				return len(s.Containers) == 0, nil
			})
		}()
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("directory still there after the last removal: %v", err)
	}
	if err := Update(dir, func(s *Sandbox) (bool, error) {
		if s != nil {
			t.Fatal("record of a removed sandbox")
		}
		return false, nil
	}); err != nil {
		t.Fatal(err)
	}
}
