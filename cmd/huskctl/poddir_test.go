package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/errdefs"

	"github.com/huskrt/husk/shim"
)

// huskctl metrics finds a sandbox's management socket as debug-console
// finds its console (podDir): by namespace or by search, refusing an id
// that is not one path element, one in several namespaces, and a sandbox
// whose shim is gone.
func TestManagementSocketFound(t *testing.T) {
	state := t.TempDir()
	for _, p := range []string{"k8s.io/live", "k8s.io/gone", "default/twice", "k8s.io/twice"} {
		if err := os.MkdirAll(filepath.Join(state, p), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	sock := filepath.Join(state, "k8s.io/live", shim.ManagementSocket)
	if err := os.WriteFile(sock, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{"", "k8s.io"} {
		if got, err := managementSocket(state, ns, "live"); err != nil || got != sock {
			t.Errorf("live (namespace %q): %q, %v; want %q", ns, got, err, sock)
		}
	}
	for _, tc := range []struct {
		ns, id string
		want   error
		says   string
	}{
		{"", "nosuch", errdefs.ErrNotFound, "no pod nosuch"},
		{"default", "live", errdefs.ErrNotFound, "no pod live in namespace default"},
		{"", "gone", errdefs.ErrNotFound, "no running shim"},
		{"", "twice", errdefs.ErrInvalidArgument, "--namespace"},
		{"", "k8s.io/live", errdefs.ErrInvalidArgument, "pod id"},
		{"", "..", errdefs.ErrInvalidArgument, "pod id"},
	} {
		_, err := managementSocket(state, tc.ns, tc.id)
		if !errors.Is(err, tc.want) || err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s/%s: %v, want %v saying %q", tc.ns, tc.id, err, tc.want, tc.says)
		}
	}
}
