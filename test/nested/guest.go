package nested

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/huskrt/husk/internal/guestimage"
)

// BuildGuestImage builds husk-agent from the tree at repo as make agent
// does (static, cgo for libseccomp) and the guest image around it from the
// cached kernel, into dir/guest, whose path it returns. Runs that measure
// or test the VM handler use a fresh image: the one make guest left in
// .tools may hold an older agent or module list.
func BuildGuestImage(ctx context.Context, repo, dir string) (string, error) {
	agent := filepath.Join(dir, "husk-agent")
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", "seccomp netgo osusergo", "-trimpath",
		"-ldflags=-s -w -extldflags=-static", "-o", agent, "./cmd/husk-agent")
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the agent: %v\n%s", err, b)
	}
	out := filepath.Join(dir, "guest")
	if _, err := guestimage.Build(ctx, guestimage.Options{
		KernelDir: filepath.Join(repo, ".tools", "kernel", "cloud-amd64"), Agent: agent, OutDir: out}); err != nil {
		return "", err
	}
	return out, nil
}
