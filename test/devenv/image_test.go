package devenv

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func needBusybox(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(busyboxPath); err != nil {
		t.Skipf("%s missing (apt-get install busybox-static): %v", busyboxPath, err)
	}
}

// readTar returns the regular files, and the symlink targets, of a tar stream.
func readTar(t *testing.T, r io.Reader) (files map[string][]byte, links map[string]string, hdrs map[string]*tar.Header) {
	t.Helper()
	files, links, hdrs = map[string][]byte{}, map[string]string{}, map[string]*tar.Header{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		hdrs[h.Name] = h
		switch h.Typeflag {
		case tar.TypeReg:
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			files[h.Name] = b
		case tar.TypeSymlink:
			links[h.Name] = h.Linkname
		}
	}
}

// blob returns the blob d of the layout, checking its digest and size.
func blob(t *testing.T, files map[string][]byte, d ocispec.Descriptor) []byte {
	t.Helper()
	b, ok := files["blobs/sha256/"+d.Digest.Encoded()]
	if !ok {
		t.Fatalf("blob %s (%s) missing", d.Digest, d.MediaType)
	}
	if got := digest.FromBytes(b); got != d.Digest {
		t.Fatalf("blob %s has digest %s", d.Digest, got)
	}
	if int64(len(b)) != d.Size {
		t.Fatalf("blob %s: descriptor size %d, blob size %d", d.Digest, d.Size, len(b))
	}
	return b
}

func TestBusyboxImageIsValidOCILayout(t *testing.T) {
	needBusybox(t)
	tarPath := filepath.Join(t.TempDir(), "bb.tar")
	if err := BusyboxImage(tarPath, BusyboxRef); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(tarPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	files, _, _ := readTar(t, f)

	var layout ocispec.ImageLayout
	if err := json.Unmarshal(files[ocispec.ImageLayoutFile], &layout); err != nil || layout.Version != ocispec.ImageLayoutVersion {
		t.Fatalf("oci-layout = %q (%v)", files[ocispec.ImageLayoutFile], err)
	}
	var index ocispec.Index
	if err := json.Unmarshal(files[ocispec.ImageIndexFile], &index); err != nil {
		t.Fatal(err)
	}
	if len(index.Manifests) != 1 {
		t.Fatalf("index has %d manifests, want 1", len(index.Manifests))
	}
	md := index.Manifests[0]
	if got := md.Annotations[ocispec.AnnotationRefName]; got != BusyboxRef {
		t.Errorf("ref.name annotation = %q, want %q", got, BusyboxRef)
	}
	if md.Platform == nil || md.Platform.OS != "linux" {
		t.Errorf("manifest platform = %+v", md.Platform)
	}

	var man ocispec.Manifest
	if err := json.Unmarshal(blob(t, files, md), &man); err != nil {
		t.Fatal(err)
	}
	if man.MediaType != ocispec.MediaTypeImageManifest || len(man.Layers) != 1 {
		t.Fatalf("manifest = %+v", man)
	}
	var img ocispec.Image
	if err := json.Unmarshal(blob(t, files, man.Config), &img); err != nil {
		t.Fatal(err)
	}
	if img.OS != "linux" || img.Architecture != md.Platform.Architecture {
		t.Errorf("config platform %s/%s, index %s/%s", img.OS, img.Architecture, md.Platform.OS, md.Platform.Architecture)
	}
	if len(img.Config.Cmd) != 1 || img.Config.Cmd[0] != "sh" {
		t.Errorf("Cmd = %q, want [sh]", img.Config.Cmd)
	}

	zr, err := gzip.NewReader(bytes.NewReader(blob(t, files, man.Layers[0])))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if len(img.RootFS.DiffIDs) != 1 || img.RootFS.DiffIDs[0] != digest.FromBytes(raw) {
		t.Fatalf("diff_ids = %v, uncompressed layer is %s", img.RootFS.DiffIDs, digest.FromBytes(raw))
	}
	lfiles, links, hdrs := readTar(t, bytes.NewReader(raw))
	if links["bin/sh"] != "/bin/busybox" {
		t.Errorf("bin/sh -> %q, want /bin/busybox", links["bin/sh"])
	}
	if len(lfiles["bin/busybox"]) == 0 {
		t.Error("bin/busybox missing from the layer")
	}
	if h := hdrs["tmp/"]; h == nil || h.Mode != 0o1777 {
		t.Errorf("tmp/ header = %+v, want mode 1777", h)
	}
}

func TestBusyboxImageIsDeterministic(t *testing.T) {
	needBusybox(t)
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.tar"), filepath.Join(dir, "b.tar")
	for _, p := range []string{a, b} {
		if err := BusyboxImage(p, BusyboxRef); err != nil {
			t.Fatal(err)
		}
	}
	ab, _ := os.ReadFile(a)
	bb, _ := os.ReadFile(b)
	if !bytes.Equal(ab, bb) {
		t.Fatal("two builds of the busybox image differ")
	}
}

func TestBusyboxRootfs(t *testing.T) {
	needBusybox(t)
	dir := filepath.Join(t.TempDir(), "rootfs")
	// Twice: writing over an existing rootfs must work.
	for range 2 {
		if err := BusyboxRootfs(dir); err != nil {
			t.Fatal(err)
		}
	}
	if target, err := os.Readlink(filepath.Join(dir, "bin/sh")); err != nil || target != "/bin/busybox" {
		t.Errorf("bin/sh -> %q (%v)", target, err)
	}
	if target, err := os.Readlink(filepath.Join(dir, "usr/bin/env")); err != nil || target != "/bin/busybox" {
		t.Errorf("usr/bin/env -> %q (%v)", target, err)
	}
	st, err := os.Stat(filepath.Join(dir, "tmp"))
	if err != nil || st.Mode()&fs.ModeSticky == 0 || st.Mode().Perm() != 0o777 {
		t.Errorf("tmp mode = %v (%v), want sticky 0777", st.Mode(), err)
	}
	passwd, err := os.ReadFile(filepath.Join(dir, "etc/passwd"))
	if err != nil || !bytes.Contains(passwd, []byte("nobody:x:65534:65534:")) {
		t.Errorf("etc/passwd = %q (%v)", passwd, err)
	}
	for _, d := range []string{"proc", "sys", "dev", "root"} {
		if st, err := os.Stat(filepath.Join(dir, d)); err != nil || !st.IsDir() {
			t.Errorf("%s: %v", d, err)
		}
	}
}

func TestUnescapeOctal(t *testing.T) {
	for in, want := range map[string]string{
		`/a/b`:          "/a/b",
		`/a\040b`:       "/a b",
		`/a\134b`:       `/a\b`,
		`/tail\04`:      `/tail\04`,
		`/x\011y\012z`:  "/x\ty\nz",
		`/not\9octal0`:  `/not\9octal0`,
		`\040leading`:   " leading",
		`trailing\040`:  "trailing ",
		`/dir/with\\ok`: `/dir/with\\ok`,
	} {
		if got := unescapeOctal(in); got != want {
			t.Errorf("unescapeOctal(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestConfigTOMLRejectsQuotes(t *testing.T) {
	if _, err := configTOML("/tmp/it's", "debug", nil); err == nil {
		t.Fatal("a dir with a quote was accepted")
	}
}
