package devenv

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/huskrt/husk/internal/logging"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// PauseRef is the name of the bench's sandbox image, the one the CRI plugin
// of a bench started with Options.CRI runs as every pod's first container
// (pinned_images.sandbox). It is built locally, so no registry is contacted.
const PauseRef = "husk.local/pause:3.10"

// pauseSource is the pause program, relative to the repository root.
const pauseSource = "test/images/pause/pause.c"

// pauseUser is the user the pause process runs as, as in Kubernetes' pause
// image: it needs no privilege at all.
const pauseUser = "65535:65535"

// BuildPause compiles the repository's pause program (test/images/pause)
// into a static binary at out, with $CC or gcc.
func BuildPause(out string) error {
	root, err := RepoRoot()
	if err != nil {
		return err
	}
	cc := os.Getenv("CC")
	if cc == "" {
		cc = "gcc"
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return fmt.Errorf("devenv: %w", err)
	}
	// -static: the image holds nothing but /pause. -s: no symbols, a smaller
	// layer. Debian's libc6-dev ships libc.a.
	cmd := exec.Command(cc, "-Os", "-static", "-s", "-Wall", "-Wextra", "-Werror", "-o", out, filepath.Join(root, pauseSource))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("devenv: build pause with %s: %w: %s (apt-get install gcc libc6-dev)", cc, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return nil
}

// PauseImage writes an OCI image-layout tarball to tarPath holding the
// static pause binary at /pause, named ref, shaped like Kubernetes' pause
// image: entrypoint /pause, user 65535.
func PauseImage(tarPath, ref, pauseBin string) error {
	bin, err := os.ReadFile(pauseBin)
	if err != nil {
		return fmt.Errorf("devenv: %w", err)
	}
	return writeImage(tarPath, ref, []entry{{path: "pause", mode: 0o755, data: bin}}, ocispec.ImageConfig{
		User:       pauseUser,
		Env:        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		Entrypoint: []string{"/pause"},
	})
}

// ImportPause builds the pause program and image into Dir and imports the
// image as PauseRef into CRINamespace, where the CRI plugin looks for its
// sandbox image. Start calls it for a bench with Options.CRI; calling it
// again re-imports the same image.
func (c *Containerd) ImportPause(ctx context.Context) error {
	t0 := time.Now()
	bin := filepath.Join(c.Dir, "pause", "pause")
	if err := BuildPause(bin); err != nil {
		return err
	}
	tarPath := filepath.Join(c.Dir, "pause", "pause.tar")
	if err := PauseImage(tarPath, PauseRef, bin); err != nil {
		return err
	}
	if err := c.importImage(ctx, CRINamespace, tarPath, PauseRef); err != nil {
		return fmt.Errorf("devenv: import pause: %w", err)
	}
	logging.L(ctx).Debug("pause imported", "ref", PauseRef, "namespace", CRINamespace, "took", time.Since(t0))
	return nil
}
