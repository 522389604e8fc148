package nested

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// ContainerdResult is one containerd run.
type ContainerdResult struct {
	Console    string        // the outer guest's serial console
	Verdict    string        // after "HUSK-CTR-VERDICT: ", "" when none was printed
	Wall       time.Duration // QEMU's run, start to exit
	InitrdSize int           // bytes of the outer initrd
}

// Passed reports whether the scenario passed.
func (r *ContainerdResult) Passed() bool { return r.Verdict == verdictPass }

// Lines returns the console's lines that the harness and the scenario's
// helpers printed ("HUSK-CTR: ..."), for a test's log.
func (r *ContainerdResult) Lines() []string {
	var out []string
	for _, l := range regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(ctrMarker)+`.*$`).FindAllString(r.Console, -1) {
		out = append(out, strings.TrimSpace(l))
	}
	return out
}

// RunContainerd builds the outer initrd of c into dir (Busybox and Kernel
// come from as when unset), boots it with ContainerdMemMiB of memory until
// the guest powers off or ctx ends, and returns the console; tee, when not
// nil, sees the console as it comes. The error is QEMU's (or the build's);
// the scenario's outcome is the result's Verdict.
func RunContainerd(ctx context.Context, as *Assets, c ContainerdConfig, dir string, tee io.Writer) (*ContainerdResult, error) {
	if c.Busybox == nil {
		c.Busybox = as.Busybox
	}
	if c.Kernel == nil {
		c.Kernel = as.Kernel
	}
	initrd, err := ContainerdOuterInitrd(c)
	if err != nil {
		return nil, err
	}
	outerPath := filepath.Join(dir, "containerd-outer.cpio")
	if err := os.WriteFile(outerPath, initrd, 0o644); err != nil {
		return nil, err
	}
	r := &ContainerdResult{InitrdSize: len(initrd)}
	var console bytes.Buffer
	var out io.Writer = &console
	if tee != nil {
		out = io.MultiWriter(&console, tee)
	}
	start := time.Now()
	err = RunQEMU(ctx, as.QEMU, QEMUArgs(c.Kernel.Vmlinuz, outerPath, "console=ttyS0 panic=-1 quiet", ContainerdMemMiB), out)
	r.Wall = time.Since(start)
	r.Console = console.String()
	_ = os.WriteFile(filepath.Join(dir, "containerd-console.log"), console.Bytes(), 0o644)
	if m := regexp.MustCompile(regexp.QuoteMeta(ctrVerdict) + `(.*)`).FindStringSubmatch(r.Console); m != nil {
		r.Verdict = strings.TrimSpace(m[1])
	}
	return r, err
}
