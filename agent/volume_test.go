package agent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"golang.org/x/sys/unix"

	"github.com/huskrt/husk/agent/api"
)

// volumeService is an agent keeping its volumes in a temporary directory.
func volumeService(t *testing.T) (*Service, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := New(Options{StateDir: filepath.Join(dir, "state"), VolumeDir: filepath.Join(dir, "volumes")})
	if err != nil {
		t.Fatal(err)
	}
	return s, filepath.Join(dir, "volumes")
}

// syncVol sends a request and turns the answer back into errdefs, as the
// host's client does.
func syncVol(s *Service, id string, complete bool, entries ...*api.FileEntry) (string, error) {
	r, err := s.SyncVolume(context.Background(), &api.SyncVolumeRequest{VolumeId: id, Entries: entries, Complete: complete})
	if err != nil {
		return "", errgrpc.ToNative(err)
	}
	return r.Path, nil
}

var me = struct{ uid, gid uint32 }{uint32(os.Getuid()), uint32(os.Getgid())}

func dirEntry(p string, mode uint32) *api.FileEntry {
	return &api.FileEntry{Path: p, Type: api.FileEntry_DIRECTORY, Mode: mode, Uid: me.uid, Gid: me.gid}
}

func fileEntry(p, data string, mode uint32) *api.FileEntry {
	return &api.FileEntry{Path: p, Type: api.FileEntry_REGULAR, Mode: mode, Uid: me.uid, Gid: me.gid, Data: []byte(data)}
}

func keptEntry(p string, mode uint32) *api.FileEntry {
	return &api.FileEntry{Path: p, Type: api.FileEntry_REGULAR, Mode: mode, Uid: me.uid, Gid: me.gid, Unchanged: true}
}

func linkEntry(p, target string) *api.FileEntry {
	return &api.FileEntry{Path: p, Type: api.FileEntry_SYMLINK, Uid: me.uid, Gid: me.gid, LinkTarget: target}
}

// kubeletTree is a ConfigMap volume as kubelet's atomic writer lays it
// out: the data in a timestamped directory, ..data pointing at it, and
// each key a symlink through ..data.
func kubeletTree(stamp, value string) []*api.FileEntry {
	return []*api.FileEntry{
		dirEntry("", 0o777),
		dirEntry(stamp, 0o755),
		fileEntry(stamp+"/key", value, 0o644),
		linkEntry("..data", stamp),
		linkEntry("key", "..data/key"),
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func inode(t *testing.T, p string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// TestSyncVolumeUpdatesInPlace creates a kubelet-style volume, swaps its
// ..data to a new directory as kubelet does, and checks that the copy is
// the same directory (a bind mount of it stays valid) showing the new
// contents, with the old directory gone.
func TestSyncVolumeUpdatesInPlace(t *testing.T) {
	s, dir := volumeService(t)
	p, err := syncVol(s, "cm", true, kubeletTree("..2026_12_07_14_00_00.1", "one")...)
	if err != nil {
		t.Fatal(err)
	}
	if p != filepath.Join(dir, "cm") {
		t.Errorf("path %q, want %q", p, filepath.Join(dir, "cm"))
	}
	if got := readFile(t, filepath.Join(p, "key")); got != "one" {
		t.Errorf("key = %q, want one", got)
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o777 {
		t.Errorf("root mode: %v, %v", fi.Mode(), err)
	}
	if fi, err := os.Stat(filepath.Join(p, "key")); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("key mode: %v, %v", fi.Mode(), err)
	}
	ino := inode(t, p)
	// A reader holding the directory open, as a bind mount does.
	held, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()

	if _, err := syncVol(s, "cm", true, kubeletTree("..2026_12_07_14_05_00.2", "two")...); err != nil {
		t.Fatal(err)
	}
	if inode(t, p) != ino {
		t.Error("the volume's root was replaced, not updated in place")
	}
	if got := readFile(t, filepath.Join(p, "key")); got != "two" {
		t.Errorf("key after the swap = %q, want two", got)
	}
	names, err := held.Readdirnames(-1)
	if err != nil {
		t.Fatal(err)
	}
	want := "..2026_12_07_14_05_00.2,..data,key"
	if got := strings.Join(slices.Sorted(slices.Values(names)), ","); got != want {
		t.Errorf("the held directory lists %s, want %s (the old data removed)", got, want)
	}
	if target, err := os.Readlink(filepath.Join(p, "..data")); err != nil || target != "..2026_12_07_14_05_00.2" {
		t.Errorf("..data -> %q, %v", target, err)
	}
	if leftover, _ := filepath.Glob(filepath.Join(p, syncTemp+"*")); len(leftover) > 0 {
		t.Errorf("temporary files left: %v", leftover)
	}
}

// TestSyncVolumeThroughABindMount checks what a container sees: a bind
// mount of a directory volume and one of a file volume (like /etc/hosts)
// both show the contents the next sync wrote.
func TestSyncVolumeThroughABindMount(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("bind mounts need root")
	}
	s, _ := volumeService(t)
	dirVol, err := syncVol(s, "cm", true, kubeletTree("..a", "one")...)
	if err != nil {
		t.Fatal(err)
	}
	fileVol, err := syncVol(s, "hosts", true, fileEntry("", "127.0.0.1 localhost\n", 0o644))
	if err != nil {
		t.Fatal(err)
	}
	mnt := t.TempDir()
	dirMnt, fileMnt := filepath.Join(mnt, "dir"), filepath.Join(mnt, "hosts")
	if err := os.Mkdir(dirMnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(fileMnt, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for src, dst := range map[string]string{dirVol: dirMnt, fileVol: fileMnt} {
		if err := unix.Mount(src, dst, "", unix.MS_BIND|unix.MS_RDONLY, ""); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = unix.Unmount(dst, unix.MNT_DETACH) })
	}
	if _, err := syncVol(s, "cm", true, kubeletTree("..b", "two")...); err != nil {
		t.Fatal(err)
	}
	if _, err := syncVol(s, "hosts", true, fileEntry("", "10.0.0.2 web\n", 0o644)); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(dirMnt, "key")); got != "two" {
		t.Errorf("through the directory's bind mount: %q, want two", got)
	}
	if got := readFile(t, fileMnt); got != "10.0.0.2 web\n" {
		t.Errorf("through the file's bind mount: %q, want the new contents", got)
	}
}

// TestSyncVolumeCompleteRemovesWhatIsGone checks that only a complete
// request removes what it does not list, and that unchanged keeps the
// guest's contents while applying the new mode.
func TestSyncVolumeCompleteRemovesWhatIsGone(t *testing.T) {
	s, _ := volumeService(t)
	p, err := syncVol(s, "v", true, dirEntry("", 0o755), dirEntry("d", 0o755), fileEntry("d/a", "A", 0o644), fileEntry("b", "B", 0o644))
	if err != nil {
		t.Fatal(err)
	}
	// Not complete: b stays although it is not listed.
	if _, err := syncVol(s, "v", false, dirEntry("", 0o755), fileEntry("c", "C", 0o600)); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"d/a", "b", "c"} {
		if _, err := os.Lstat(filepath.Join(p, name)); err != nil {
			t.Errorf("%s after an incomplete sync: %v", name, err)
		}
	}
	// Complete: d (with d/a) and b go, c is kept unchanged with mode 0640.
	if _, err := syncVol(s, "v", true, dirEntry("", 0o755), keptEntry("c", 0o640)); err != nil {
		t.Fatal(err)
	}
	names, _ := os.ReadDir(p)
	if len(names) != 1 || names[0].Name() != "c" {
		t.Errorf("after a complete sync the volume holds %v, want c alone", names)
	}
	if got := readFile(t, filepath.Join(p, "c")); got != "C" {
		t.Errorf("c = %q, want its kept contents C", got)
	}
	if fi, err := os.Stat(filepath.Join(p, "c")); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("c's mode: %v, %v", fi.Mode(), err)
	}
	// Unchanged for what the guest does not have: the host must resend.
	if _, err := syncVol(s, "v", true, dirEntry("", 0o755), keptEntry("gone", 0o644)); !errdefs.IsFailedPrecondition(err) {
		t.Errorf("unchanged for a missing file: %v, want FailedPrecondition", err)
	}
	// A file where a directory was, and a directory where a file was.
	if _, err := syncVol(s, "v", true, dirEntry("", 0o755), fileEntry("d", "now a file", 0o644), dirEntry("c", 0o700), fileEntry("c/x", "x", 0o644)); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(p, "c/x")); got != "x" {
		t.Errorf("c/x = %q", got)
	}
	// The root's type cannot change under a bind mount.
	if _, err := syncVol(s, "v", true, fileEntry("", "a file now", 0o644)); !errdefs.IsFailedPrecondition(err) {
		t.Errorf("a directory volume synced as a file: %v, want FailedPrecondition", err)
	}
}

// TestSyncVolumeNeverFollowsSymlinks plants symlinks to a directory
// outside the volume where the request writes (as a container with the
// volume mounted writable could), and checks that the outside is
// untouched.
func TestSyncVolumeNeverFollowsSymlinks(t *testing.T) {
	s, dir := volumeService(t)
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret")
	if err := os.WriteFile(secret, []byte("host"), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := syncVol(s, "v", true, dirEntry("", 0o755), dirEntry("sub", 0o755))
	if err != nil {
		t.Fatal(err)
	}
	// sub becomes a link out of the volume; f a link to a file outside.
	if err := os.Remove(filepath.Join(p, "sub")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(p, "sub")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, filepath.Join(p, "f")); err != nil {
		t.Fatal(err)
	}
	if _, err := syncVol(s, "v", false, dirEntry("", 0o755), keptEntry("f", 0o666)); !errdefs.IsFailedPrecondition(err) {
		t.Errorf("unchanged on a symlink: %v, want FailedPrecondition", err)
	}
	if _, err := syncVol(s, "v", false, dirEntry("", 0o755), dirEntry("sub", 0o777), fileEntry("sub/secret", "guest", 0o666), fileEntry("f", "guest", 0o666)); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, secret); got != "host" {
		t.Errorf("the file outside the volume became %q", got)
	}
	if fi, err := os.Stat(secret); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the file outside the volume: %v, %v", fi.Mode(), err)
	}
	if fi, err := os.Lstat(filepath.Join(p, "sub")); err != nil || !fi.IsDir() {
		t.Errorf("sub is not a directory of the volume now: %v", err)
	}
	// A file volume whose guest copy was made a symlink is refused.
	if err := os.Symlink(secret, filepath.Join(dir, "hosts")); err != nil {
		t.Fatal(err)
	}
	if _, err := syncVol(s, "hosts", true, fileEntry("", "guest", 0o644)); !errdefs.IsFailedPrecondition(err) {
		t.Errorf("a file volume that is a symlink: %v, want FailedPrecondition", err)
	}
	if got := readFile(t, secret); got != "host" {
		t.Errorf("the file outside the volume became %q", got)
	}
	// Below the root, a directory that is a symlink is never entered.
	rfd, err := unix.Open(p, unix.O_DIRECTORY|unix.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(rfd)
	if err := os.Symlink(outside, filepath.Join(p, "out")); err != nil {
		t.Fatal(err)
	}
	err = inParent(rfd, "out/secret", func(int, string) error { return errors.New("entered") })
	if !errors.Is(err, unix.ELOOP) {
		t.Errorf("inParent through a symlink: %v, want ELOOP", err)
	}
}

// TestSyncVolumeRefusesBadRequests checks each refusal: InvalidArgument,
// and nothing written.
func TestSyncVolumeRefusesBadRequests(t *testing.T) {
	root := dirEntry("", 0o755)
	many := []*api.FileEntry{root}
	for i := range maxVolumeEntries {
		many = append(many, fileEntry("f"+strconv.Itoa(i), "", 0o644))
	}
	for _, tc := range []struct {
		name    string
		id      string
		entries []*api.FileEntry
	}{
		{"empty id", "", []*api.FileEntry{root}},
		{"id .", ".", []*api.FileEntry{root}},
		{"id ..", "..", []*api.FileEntry{root}},
		{"id with a slash", "a/b", []*api.FileEntry{root}},
		{"id of 65 bytes", strings.Repeat("v", 65), []*api.FileEntry{root}},
		{"no entries", "v", nil},
		{"root not first", "v", []*api.FileEntry{fileEntry("a", "", 0o644), root}},
		{"root a symlink", "v", []*api.FileEntry{linkEntry("", "x")}},
		{"path ..", "v", []*api.FileEntry{root, fileEntry("..", "x", 0o644)}},
		{"path with ..", "v", []*api.FileEntry{root, dirEntry("a", 0o755), fileEntry("a/../../b", "x", 0o644)}},
		{"absolute path", "v", []*api.FileEntry{root, fileEntry("/etc/passwd", "x", 0o644)}},
		{"empty element", "v", []*api.FileEntry{root, dirEntry("a", 0o755), fileEntry("a//b", "x", 0o644)}},
		{"trailing slash", "v", []*api.FileEntry{root, dirEntry("a/", 0o755)}},
		{"path .", "v", []*api.FileEntry{root, dirEntry(".", 0o755)}},
		{"NUL in path", "v", []*api.FileEntry{root, fileEntry("a\x00b", "x", 0o644)}},
		{"listed twice", "v", []*api.FileEntry{root, fileEntry("a", "x", 0o644), fileEntry("a", "y", 0o644)}},
		{"parent not listed", "v", []*api.FileEntry{root, fileEntry("a/b", "x", 0o644)}},
		{"parent listed after", "v", []*api.FileEntry{root, fileEntry("a/b", "x", 0o644), dirEntry("a", 0o755)}},
		{"parent a file", "v", []*api.FileEntry{root, fileEntry("a", "x", 0o644), fileEntry("a/b", "x", 0o644)}},
		{"parent a symlink", "v", []*api.FileEntry{root, linkEntry("a", "."), fileEntry("a/b", "x", 0o644)}},
		{"absolute link target", "v", []*api.FileEntry{root, linkEntry("l", "/etc/shadow")}},
		{"link out of the volume", "v", []*api.FileEntry{root, linkEntry("l", "../x")}},
		{"deeper link out of the volume", "v", []*api.FileEntry{root, dirEntry("a", 0o755), linkEntry("a/l", "b/../../../x")}},
		{"empty link target", "v", []*api.FileEntry{root, linkEntry("l", "")}},
		{"link target on a file", "v", []*api.FileEntry{root, {Path: "f", Type: api.FileEntry_REGULAR, LinkTarget: "x"}}},
		{"mode over 07777", "v", []*api.FileEntry{root, fileEntry("a", "x", 0o10644)}},
		{"unchanged with data", "v", []*api.FileEntry{root, {Path: "a", Type: api.FileEntry_REGULAR, Unchanged: true, Data: []byte("x")}}},
		{"directory with data", "v", []*api.FileEntry{root, {Path: "a", Type: api.FileEntry_DIRECTORY, Data: []byte("x")}}},
		{"no type", "v", []*api.FileEntry{root, {Path: "a"}}},
		{"unknown type", "v", []*api.FileEntry{root, {Path: "a", Type: 9}}},
		{"data over the bound", "v", []*api.FileEntry{root, fileEntry("a", strings.Repeat("x", maxVolumeData/2+1), 0o644), fileEntry("b", strings.Repeat("x", maxVolumeData/2), 0o644)}},
		{"too many entries", "v", many},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, dir := volumeService(t)
			_, err := syncVol(s, tc.id, true, tc.entries...)
			if !errdefs.IsInvalidArgument(err) {
				t.Fatalf("got %v, want InvalidArgument", err)
			}
			if _, err := os.Lstat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the refused request left %s (%v)", dir, err)
			}
		})
	}
}

// TestDestroySandboxRemovesVolumes checks that the volumes go with the
// pod.
func TestDestroySandboxRemovesVolumes(t *testing.T) {
	s, dir := volumeService(t)
	ctx := context.Background()
	if _, err := s.CreateSandbox(ctx, &api.CreateSandboxRequest{SandboxId: "pod"}); err != nil {
		t.Fatal(err)
	}
	if _, err := syncVol(s, "v", true, dirEntry("", 0o755), fileEntry("a", "A", 0o644)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DestroySandbox(ctx, &api.DestroySandboxRequest{SandboxId: "pod"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after DestroySandbox: %s (%v)", dir, err)
	}
}

// FuzzSyncVolume sends trees made of fuzzed paths and link targets to a
// guest copy in which symlinks out of the volume were planted (as a
// container with the volume mounted writable could), and checks that
// whatever is accepted or refused, nothing outside the volume changes.
// Each line of the input is an entry: "d path", "f path" or "l path
// target".
func FuzzSyncVolume(f *testing.F) {
	for _, seed := range []string{
		"d a\nf a/b",
		"d out\nf out/secret",
		"f up\nd ..data\nl key ..data/key",
		"l out .\nd out/x",
		"d a\nl a/l ../../outside\nf a/l",
		"d abs\nf abs/secret",
		"f ../outside/secret",
		"d a\nd a/b\nl a/b/c ../..\nf a/b/c",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		if len(spec) > 4096 {
			return
		}
		top := t.TempDir()
		outside := filepath.Join(top, "outside")
		if err := os.Mkdir(outside, 0o755); err != nil {
			t.Fatal(err)
		}
		secret := filepath.Join(outside, "secret")
		if err := os.WriteFile(secret, []byte("host"), 0o600); err != nil {
			t.Fatal(err)
		}
		vols := filepath.Join(top, "volumes")
		s, err := New(Options{StateDir: filepath.Join(top, "state"), VolumeDir: vols})
		if err != nil {
			t.Fatal(err)
		}
		p, err := syncVol(s, "v", true, dirEntry("", 0o755))
		if err != nil {
			t.Fatal(err)
		}
		for name, target := range map[string]string{"out": "../../outside", "abs": outside, "up": "..", "key": secret} {
			if err := os.Symlink(target, filepath.Join(p, name)); err != nil {
				t.Fatal(err)
			}
		}
		entries := []*api.FileEntry{dirEntry("", 0o755)}
		for _, line := range strings.Split(spec, "\n") {
			kind, rest, _ := strings.Cut(line, " ")
			switch kind {
			case "d":
				entries = append(entries, dirEntry(rest, 0o777))
			case "f":
				entries = append(entries, fileEntry(rest, "guest", 0o666))
			case "l":
				name, target, _ := strings.Cut(rest, " ")
				entries = append(entries, linkEntry(name, target))
			}
		}
		_, _ = syncVol(s, "v", false, entries...)
		_, _ = syncVol(s, "v", true, entries...)
		names, err := os.ReadDir(outside)
		if err != nil || len(names) != 1 {
			t.Fatalf("outside the volume: %v, %v", names, err)
		}
		if b, err := os.ReadFile(secret); err != nil || string(b) != "host" {
			t.Fatalf("the secret outside the volume is %q (%v)", b, err)
		}
		if fi, err := os.Stat(secret); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("the secret's mode: %v (%v)", fi.Mode(), err)
		}
		if tops, _ := os.ReadDir(top); len(tops) != 3 {
			t.Fatalf("next to the volumes: %v", tops)
		}
		if vs, _ := os.ReadDir(vols); len(vs) != 1 {
			t.Fatalf("in the volumes' directory: %v", vs)
		}
	})
}
