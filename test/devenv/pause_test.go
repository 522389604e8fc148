package devenv

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// buildPause builds the pause program into a temporary directory, skipping
// t when there is no C compiler.
func buildPause(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("gcc"); err != nil && os.Getenv("CC") == "" {
		t.Skip("no gcc (apt-get install gcc libc6-dev)")
	}
	bin := filepath.Join(t.TempDir(), "pause")
	if err := BuildPause(bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

func TestPauseImageIsValidOCILayout(t *testing.T) {
	bin := buildPause(t)
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.tar"), filepath.Join(dir, "b.tar")
	for _, p := range []string{a, b} {
		if err := PauseImage(p, PauseRef, bin); err != nil {
			t.Fatal(err)
		}
	}
	ab, _ := os.ReadFile(a)
	bb, _ := os.ReadFile(b)
	if !bytes.Equal(ab, bb) {
		t.Error("two builds of the pause image from one binary differ")
	}

	files, _, _ := readTar(t, bytes.NewReader(ab))
	var index ocispec.Index
	if err := json.Unmarshal(files[ocispec.ImageIndexFile], &index); err != nil || len(index.Manifests) != 1 {
		t.Fatalf("index: %s (%v)", files[ocispec.ImageIndexFile], err)
	}
	if got := index.Manifests[0].Annotations[ocispec.AnnotationRefName]; got != PauseRef {
		t.Errorf("ref.name = %q, want %q", got, PauseRef)
	}
	var man ocispec.Manifest
	if err := json.Unmarshal(blob(t, files, index.Manifests[0]), &man); err != nil {
		t.Fatal(err)
	}
	var img ocispec.Image
	if err := json.Unmarshal(blob(t, files, man.Config), &img); err != nil {
		t.Fatal(err)
	}
	if strings.Join(img.Config.Entrypoint, " ") != "/pause" || img.Config.User != "65535:65535" || len(img.Config.Cmd) != 0 {
		t.Errorf("config: entrypoint %q, cmd %q, user %q; want [/pause], none, 65535:65535", img.Config.Entrypoint, img.Config.Cmd, img.Config.User)
	}
	zr, err := gzip.NewReader(bytes.NewReader(blob(t, files, man.Layers[0])))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	lfiles, _, hdrs := readTar(t, bytes.NewReader(raw))
	want, _ := os.ReadFile(bin)
	if len(hdrs) != 1 || !bytes.Equal(lfiles["pause"], want) || hdrs["pause"].Mode != 0o755 {
		t.Errorf("layer holds %d entries; want /pause alone, 0755, the binary", len(hdrs))
	}
}

// startPause starts the pause binary; with newPID it is PID 1 of a new PID
// namespace, as in a pod.
func startPause(t *testing.T, bin string, newPID bool) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if newPID {
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID}
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("pause stderr: %s", stderr.String())
		}
	})
	// Let it install its handlers: a signal before that would kill it.
	time.Sleep(100 * time.Millisecond)
	return cmd
}

func TestPauseExitsZeroOnTermAndInt(t *testing.T) {
	bin := buildPause(t)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd := startPause(t, bin, false)
			// A signal it must not die of.
			if err := cmd.Process.Signal(syscall.SIGCHLD); err != nil {
				t.Fatal(err)
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("pause after %v: %v, want exit status 0", sig, err)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("pause still running 5s after %v", sig)
			}
		})
	}
}

// TestPauseReapsOrphans makes pause PID 1 of a PID namespace, orphans a
// process in it (its parent exits; the kernel hands it to PID 1) and
// requires the orphan to be reaped once it exits, not left a zombie.
func TestPauseReapsOrphans(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: a new PID namespace")
	}
	nsenter, err := exec.LookPath("nsenter")
	if err != nil {
		t.Skip("no nsenter (util-linux)")
	}
	needBusybox(t)
	bin := buildPause(t)
	pause := startPause(t, bin, true)
	ppid := pause.Process.Pid

	// sh enters the namespace, backgrounds a sleep and exits: the sleep's
	// new parent is the namespace's PID 1.
	out, err := exec.Command(nsenter, "--target", strconv.Itoa(ppid), "--pid", "--",
		busyboxPath, "sh", "-c", "sleep 0.5 </dev/null >/dev/null 2>&1 & exit 0").CombinedOutput()
	if err != nil {
		t.Fatalf("nsenter: %v: %s", err, out)
	}
	orphan := 0
	for deadline := time.Now().Add(2 * time.Second); orphan == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		orphan = childOf(ppid)
	}
	if orphan == 0 {
		t.Fatal("the orphan never became pause's child; the test proves nothing")
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(orphan))); errors.Is(err, os.ErrNotExist) {
			return // reaped
		}
	}
	t.Errorf("orphan %d still exists 5s after it exited (alive: %v): pause does not reap", orphan, alive(orphan))
}

// childOf returns a child of pid, or 0.
func childOf(pid int) int {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		if f := strings.Fields(string(b[i+1:])); len(f) > 2 && f[1] == strconv.Itoa(pid) {
			return p
		}
	}
	return 0
}
