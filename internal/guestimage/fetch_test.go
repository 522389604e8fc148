package guestimage

import (
	"os"
	"path/filepath"
	"testing"
)

func TestParseDepends(t *testing.T) {
	for _, tc := range []struct{ name, out, want string }{
		{"bookworm", "linux-image-cloud-amd64\n  Depends: linux-image-6.1.0-57-cloud-amd64\n", "linux-image-6.1.0-57-cloud-amd64"},
		{"first image", "linux-image-cloud-amd64\n  Depends: initramfs-tools\n  Depends: linux-image-6.12.1-cloud-amd64\n  Depends: linux-image-7-cloud-amd64\n", "linux-image-6.12.1-cloud-amd64"},
		{"recommends only", "linux-image-cloud-amd64\n  Recommends: linux-image-6.1.0-57-cloud-amd64\n", ""},
		{"unknown package", "", ""},
	} {
		if got := parseDepends([]byte(tc.out)); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestParseCandidate(t *testing.T) {
	for _, tc := range []struct{ name, out, want string }{
		{"candidate", "linux-image-6.1.0-57-cloud-amd64:\n  Installed: (none)\n  Candidate: 6.1.192-3\n  Version table:\n     6.1.192-3 500\n", "6.1.192-3"},
		{"none", "x:\n  Installed: (none)\n  Candidate: (none)\n", ""},
		{"unknown package", "", ""},
	} {
		if got := parseCandidate([]byte(tc.out)); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestLinkCurrent(t *testing.T) {
	cache := t.TempDir()
	for _, dir := range []string{"pkg_1", "pkg_2"} {
		if err := linkCurrent(cache, filepath.Join(cache, dir)); err != nil {
			t.Fatal(err)
		}
		if got, err := os.Readlink(filepath.Join(cache, CurrentLink)); err != nil || got != dir {
			t.Errorf("%s -> %q, %v; want %s", CurrentLink, got, err, dir)
		}
	}
}
