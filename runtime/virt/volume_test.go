package virt

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/huskrt/husk/agent"
	"github.com/huskrt/husk/agent/api"
	"github.com/huskrt/husk/runtime/handler"
)

func TestVolumeID(t *testing.T) {
	a := volumeID("/var/lib/kubelet/pods/p/volumes/kubernetes.io~configmap/cfg")
	if b := volumeID("/var/lib/kubelet/pods/p/volumes/kubernetes.io~configmap/cfg/"); b != a {
		t.Errorf("one source, two ids: %s and %s", a, b)
	}
	if b := volumeID("/var/lib/kubelet/pods/p/volumes/kubernetes.io~configmap/cfg2"); b == a {
		t.Errorf("two sources, one id %s", a)
	}
	if len(a) > 64 || strings.Trim(a, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
		t.Errorf("id %q is not one the agent takes", a)
	}
}

// writeKubeletVolume lays dir out as kubelet's atomic writer does, with
// key's value in a new timestamped directory that ..data is swapped to.
func writeKubeletVolume(t *testing.T, dir, stamp, value string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, stamp), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, stamp, "key"), []byte(value), 0o644); err != nil {
		t.Fatal(err)
	}
	old, _ := os.Readlink(filepath.Join(dir, "..data"))
	if err := os.Symlink(stamp, filepath.Join(dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "key")); errors.Is(err, os.ErrNotExist) {
		if err := os.Symlink("..data/key", filepath.Join(dir, "key")); err != nil {
			t.Fatal(err)
		}
	}
	if old != "" {
		if err := os.RemoveAll(filepath.Join(dir, old)); err != nil {
			t.Fatal(err)
		}
	}
}

// guestAgent is a real agent's SyncVolume on a temporary directory.
func guestAgent(t *testing.T) *agent.Service {
	t.Helper()
	dir := t.TempDir()
	svc, err := agent.New(agent.Options{StateDir: filepath.Join(dir, "state"), VolumeDir: filepath.Join(dir, "volumes")})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func send(t *testing.T, svc *agent.Service, id string, w *walked) string {
	t.Helper()
	r, err := svc.SyncVolume(context.Background(), &api.SyncVolumeRequest{VolumeId: id, Entries: w.entries, Complete: true})
	if err != nil {
		t.Fatalf("the agent refused the walk: %v", errgrpc.ToNative(err))
	}
	return r.Path
}

// TestWalkVolume walks a kubelet-style volume with files no guest can
// have, hands it to a real agent, then walks again: what did not change
// is sent unchanged and compares equal; a ..data swap is seen.
func TestWalkVolume(t *testing.T) {
	src := t.TempDir()
	writeKubeletVolume(t, src, "..2026_12_07_14_00_00.1", "one")
	if err := os.Symlink("/etc/passwd", filepath.Join(src, "abs")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../out", filepath.Join(src, "escape")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(src, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", filepath.Join(src, "sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	w, err := walkVolume(src, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range w.entries {
		got = append(got, fmt.Sprintf("%s:%v", e.Path, e.Type))
	}
	want := ":DIRECTORY,..2026_12_07_14_00_00.1:DIRECTORY,..2026_12_07_14_00_00.1/key:REGULAR,..data:SYMLINK,key:SYMLINK"
	if strings.Join(got, ",") != want {
		t.Errorf("entries %s, want %s", strings.Join(got, ","), want)
	}
	if strings.Join(w.skipped, ",") != "abs,escape,fifo,sock" {
		t.Errorf("skipped %v, want abs, escape, fifo and sock", w.skipped)
	}
	svc := guestAgent(t)
	guest := send(t, svc, volumeID(src), w)
	if b, err := os.ReadFile(filepath.Join(guest, "key")); err != nil || string(b) != "one" {
		t.Fatalf("the guest's key: %q, %v", b, err)
	}

	again, err := walkVolume(src, w.stamps)
	if err != nil {
		t.Fatal(err)
	}
	if !sameTree(again.stamps, w.stamps) {
		t.Error("an unchanged tree compares different")
	}
	for _, e := range again.entries {
		if e.Type == api.FileEntry_REGULAR && (!e.Unchanged || len(e.Data) > 0) {
			t.Errorf("%s is sent again although unchanged", e.Path)
		}
	}

	writeKubeletVolume(t, src, "..2026_12_07_14_05_00.2", "two")
	upd, err := walkVolume(src, w.stamps)
	if err != nil {
		t.Fatal(err)
	}
	if sameTree(upd.stamps, w.stamps) {
		t.Fatal("a ..data swap compares equal")
	}
	send(t, svc, volumeID(src), upd)
	if b, err := os.ReadFile(filepath.Join(guest, "key")); err != nil || string(b) != "two" {
		t.Errorf("the guest's key after the swap: %q, %v", b, err)
	}
	if _, err := os.Lstat(filepath.Join(guest, "..2026_12_07_14_00_00.1")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the old data directory is still in the guest: %v", err)
	}

	// A file's own contents change: only it is read again.
	if err := os.WriteFile(filepath.Join(src, "..2026_12_07_14_05_00.2", "key"), []byte("three"), 0o644); err != nil {
		t.Fatal(err)
	}
	edit, err := walkVolume(src, upd.stamps)
	if err != nil {
		t.Fatal(err)
	}
	if sameTree(edit.stamps, upd.stamps) {
		t.Fatal("a rewritten file compares equal")
	}
	send(t, svc, volumeID(src), edit)
	if b, _ := os.ReadFile(filepath.Join(guest, "key")); string(b) != "three" {
		t.Errorf("the guest's key after an edit: %q", b)
	}

	// A file volume, through a symlink to it (as /etc/resolv.conf often is).
	f := filepath.Join(t.TempDir(), "hosts")
	if err := os.WriteFile(f, []byte("127.0.0.1 localhost\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "resolv")
	if err := os.Symlink(f, link); err != nil {
		t.Fatal(err)
	}
	fw, err := walkVolume(link, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(fw.entries) != 1 || fw.entries[0].Type != api.FileEntry_REGULAR || string(fw.entries[0].Data) != "127.0.0.1 localhost\n" {
		t.Errorf("file volume entries %v", fw.entries)
	}
}

// TestWalkVolumeBounds: a volume over a bound is refused naming it, a
// missing source is NotFound, a device cannot be a volume.
func TestWalkVolumeBounds(t *testing.T) {
	big := t.TempDir()
	if err := os.WriteFile(filepath.Join(big, "a"), make([]byte, maxVolumeBytes/2), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(big, "b"), make([]byte, maxVolumeBytes/2+1), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := walkVolume(big, nil); !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), fmt.Sprint(maxVolumeBytes)) {
		t.Errorf("a volume over %d bytes: %v", maxVolumeBytes, err)
	}
	many := t.TempDir()
	for i := range maxVolumeEntries {
		if err := os.WriteFile(filepath.Join(many, fmt.Sprint(i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := walkVolume(many, nil); !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), fmt.Sprint(maxVolumeEntries)) {
		t.Errorf("a volume of %d entries with its root: %v", maxVolumeEntries+1, err)
	}
	if err := os.Remove(filepath.Join(many, "0")); err != nil {
		t.Fatal(err)
	}
	if w, err := walkVolume(many, nil); err != nil || len(w.entries) != maxVolumeEntries {
		t.Errorf("a volume of exactly %d entries: %v", maxVolumeEntries, err)
	}
	if _, err := walkVolume(filepath.Join(t.TempDir(), "none"), nil); !errdefs.IsNotFound(err) {
		t.Errorf("a missing source: %v", err)
	}
	if _, err := walkVolume("/dev/null", nil); !errdefs.IsInvalidArgument(err) {
		t.Errorf("a device: %v", err)
	}
}

// TestVolumesInFakeVM: through the handler, a read-only bind of a host
// directory shows its file in the container and a kubelet-style update
// within seconds; a file bind arrives; two containers share a writable
// volume (an emptyDir); a bind at /dev/shm is the guest's; a missing
// source is refused naming it.
func TestVolumesInFakeVM(t *testing.T) {
	old := resyncInterval
	resyncInterval = 100 * time.Millisecond
	defer func() { resyncInterval = old }()
	e := newEnv(t)
	sb := e.sandbox()
	cfg, empty := t.TempDir(), t.TempDir()
	writeKubeletVolume(t, cfg, "..1", "one")
	hosts := filepath.Join(t.TempDir(), "hosts")
	if err := os.WriteFile(hosts, []byte("10.0.0.9 pod-host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mounts := []specs.Mount{
		{Destination: "/cfg", Type: "bind", Source: cfg, Options: []string{"rbind", "ro"}},
		{Destination: "/etc/hosts", Type: "bind", Source: hosts, Options: []string{"rbind", "rw"}},
		{Destination: "/cache", Type: "bind", Source: empty, Options: []string{"rbind", "rw"}},
		{Destination: "/dev/shm", Type: "bind", Source: "/run/containerd/sandboxes/pod/shm", Options: []string{"rbind", "rw"}},
	}
	req := e.request("c1", handler.Stdio{}, "sleep", "1000")
	req.Spec.Mounts = append(withoutShm(req.Spec.Mounts), mounts...)
	c1, err := sb.Create(e.ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c1.Delete(context.Background()) }()
	if err := c1.Init().Start(e.ctx); err != nil {
		t.Fatal(err)
	}
	run := func(c handler.Container, id, script string) (string, int) {
		t.Helper()
		stdio, out, _ := e.fifos(id)
		stdio.Stdin = ""
		x, err := c.Exec(e.ctx, id, &specs.Process{Args: []string{"sh", "-c", script}, Cwd: "/", Env: []string{"PATH=/bin"}}, stdio)
		if err != nil {
			t.Fatal(err)
		}
		if err := x.Start(e.ctx); err != nil {
			t.Fatal(err)
		}
		got := readFifo(t, out)
		ex := waitExit(t, x)
		_ = x.Close(e.ctx)
		return got, ex.Status
	}
	if got, _ := run(c1, "e1", "cat /cfg/key /etc/hosts"); got != "one10.0.0.9 pod-host\n" {
		t.Errorf("the container reads %q", got)
	}
	if got, _ := run(c1, "e2", "echo x 2>/dev/null > /cfg/new; echo $?"); got == "0\n" {
		t.Error("a read-only volume is writable in the guest")
	}
	if got, st := run(c1, "e3", "echo shared > /cache/f && echo ok"); got != "ok\n" || st != 0 {
		t.Errorf("writing the writable volume: %q, %d", got, st)
	}
	shm := fmt.Sprintf("husk-test-%d", os.Getpid())
	if got, _ := run(c1, "e4", "echo pod > /dev/shm/"+shm+"; echo $?"); got != "0\n" {
		t.Errorf("writing /dev/shm: %q", got)
	}
	// The fake VM is the host: the guest's /dev/shm is the host's.
	defer os.Remove(filepath.Join("/dev/shm", shm))

	writeKubeletVolume(t, cfg, "..2", "two")
	deadline := time.Now().Add(10 * time.Second)
	var got string
	for time.Now().Before(deadline) {
		if got, _ = run(c1, fmt.Sprintf("p%d", time.Now().UnixNano()), "cat /cfg/key"); got == "two" {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got != "two" {
		t.Errorf("the container reads %q after the host's update, want two", got)
	}

	// A second container shares the writable volume.
	req2 := e.request("c2", handler.Stdio{}, "sleep", "1000")
	req2.Spec.Mounts = append(withoutShm(req2.Spec.Mounts), mounts[2:]...)
	c2, err := sb.Create(e.ctx, req2)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c2.Delete(context.Background()) }()
	if err := c2.Init().Start(e.ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := run(c2, "e5", "cat /cache/f /dev/shm/"+shm); got != "shared\npod\n" {
		t.Errorf("the second container reads %q from the shared volume and /dev/shm", got)
	}

	bad := e.request("c3", handler.Stdio{}, "true")
	missing := filepath.Join(t.TempDir(), "none")
	bad.Spec.Mounts = append(bad.Spec.Mounts, specs.Mount{Destination: "/x", Type: "bind", Source: missing, Options: []string{"rbind"}})
	if _, err := sb.Create(e.ctx, bad); !errdefs.IsNotFound(err) || !strings.Contains(err.Error(), missing) {
		t.Errorf("a missing source: %v", err)
	}
}

// withoutShm drops the example spec's own /dev/shm, as the CRI replaces it
// with its bind of the sandbox's.
func withoutShm(ms []specs.Mount) []specs.Mount {
	var out []specs.Mount
	for _, m := range ms {
		if m.Destination != "/dev/shm" {
			out = append(out, m)
		}
	}
	return out
}

// BenchmarkResyncWalk is the resync loop's cost per volume and tick when
// nothing changed: a kubelet-style ConfigMap of 20 keys of 1 KiB, stat
// walked and compared, no file read.
func BenchmarkResyncWalk(b *testing.B) {
	src := b.TempDir()
	data := filepath.Join(src, "..2026_12_07_14_00_00.1")
	if err := os.Mkdir(data, 0o755); err != nil {
		b.Fatal(err)
	}
	for i := range 20 {
		key := fmt.Sprintf("key%d", i)
		if err := os.WriteFile(filepath.Join(data, key), make([]byte, 1024), 0o644); err != nil {
			b.Fatal(err)
		}
		if err := os.Symlink("..data/"+key, filepath.Join(src, key)); err != nil {
			b.Fatal(err)
		}
	}
	if err := os.Symlink("..2026_12_07_14_00_00.1", filepath.Join(src, "..data")); err != nil {
		b.Fatal(err)
	}
	w, err := walkVolume(src, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		again, err := walkVolume(src, w.stamps)
		if err != nil || !sameTree(again.stamps, w.stamps) {
			b.Fatalf("walk: %v, or the unchanged tree compares different", err)
		}
	}
}

// TestVolumeResyncRecovers: a guest copy that lost a file the host sends
// unchanged gets the whole tree again; a read-only volume no container
// mounts is no longer synced, and is brought up to date when a container
// mounts it again; a writable mount freezes the guest's copy.
func TestVolumeResyncRecovers(t *testing.T) {
	old := resyncInterval
	resyncInterval = 50 * time.Millisecond
	defer func() { resyncInterval = old }()
	e := newEnv(t)
	sb := e.sandbox().(*sandbox)
	src := t.TempDir()
	for _, f := range []string{"a", "b"} {
		if err := os.WriteFile(filepath.Join(src, f), []byte(f+"1"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ro := []specs.Mount{{Destination: "/v", Type: "bind", Source: src, Options: []string{"rbind", "ro"}}}
	got, err := sb.mountVolumes(e.ctx, "c1", ro)
	if err != nil {
		t.Fatal(err)
	}
	guest := got[0].Source
	if want := filepath.Join(e.hv.started[0].cfg.Dir, "agent", "volumes", volumeID(src)); guest != want {
		t.Fatalf("guest path %s, want %s", guest, want)
	}
	read := func(name string) string {
		b, _ := os.ReadFile(filepath.Join(guest, name))
		return string(b)
	}
	eventually := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !ok(); {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 10 s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// The guest loses a; the host changes b: a must come back.
	if err := os.Remove(filepath.Join(guest, "a")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "b"), []byte("b2"), 0o644); err != nil {
		t.Fatal(err)
	}
	eventually("the lost file resent", func() bool { return read("a") == "a1" && read("b") == "b2" })

	// Unmounted: not synced.
	sb.vols.release("c1")
	time.Sleep(5 * resyncInterval)
	if err := os.WriteFile(filepath.Join(src, "b"), []byte("b3"), 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * resyncInterval)
	if got := read("b"); got != "b2" {
		t.Errorf("a volume no container mounts was synced: b = %q", got)
	}
	// Mounted again: synced before the container gets it.
	if _, err := sb.mountVolumes(e.ctx, "c2", ro); err != nil {
		t.Fatal(err)
	}
	if got := read("b"); got != "b3" {
		t.Errorf("b = %q when mounted again, want b3", got)
	}
	// A writable mount of the same source: the guest's copy is the volume.
	rw := []specs.Mount{{Destination: "/w", Type: "bind", Source: src, Options: []string{"rbind"}}}
	if _, err := sb.mountVolumes(e.ctx, "c3", rw); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(guest, "b"), []byte("guest"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "b"), []byte("b4"), 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * resyncInterval)
	if got := read("b"); got != "guest" {
		t.Errorf("a volume mounted writable was synced over: b = %q", got)
	}
	sb.vols.release("c2")
	sb.vols.release("c3")
}

// An rro bind (recursiveReadOnly) is read-only: its guest copy keeps being
// resynced from the host, as an ro one's is; it had counted as writable
// and been copied once.
func TestReadOnlyBind(t *testing.T) {
	for _, tc := range []struct {
		opts []string
		want bool
	}{
		{[]string{"rbind", "ro"}, true},
		{[]string{"rbind", "rro"}, true},
		{[]string{"rbind", "rprivate", "rw"}, false},
		{[]string{"rbind", "rrw"}, false},
		{nil, false},
	} {
		if got := readOnlyBind(tc.opts); got != tc.want {
			t.Errorf("readOnlyBind(%q) = %v, want %v", tc.opts, got, tc.want)
		}
	}
}
