//go:build !husk_vmmchild

package builtin

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/errdefs"

	"github.com/huskrt/husk/runtime/virt"
)

func TestCheckConfig(t *testing.T) {
	base := testConfig(t)
	base.Initrd = base.Kernel
	open := t.TempDir()
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(base.Dir, link); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		mod  func(c *virt.VMConfig)
	}{
		{"no id", func(c *virt.VMConfig) { c.ID = "" }},
		{"id with a slash", func(c *virt.VMConfig) { c.ID = "a/b" }},
		{"long id", func(c *virt.VMConfig) { c.ID = strings.Repeat("a", maxIDLen+1) }},
		{"relative dir", func(c *virt.VMConfig) { c.Dir = "vm" }},
		{"unclean dir", func(c *virt.VMConfig) { c.Dir = base.Dir + "/." }},
		{"dir /", func(c *virt.VMConfig) { c.Dir = "/" }},
		{"missing dir", func(c *virt.VMConfig) { c.Dir = base.Dir + "-missing" }},
		{"dir is a file", func(c *virt.VMConfig) { c.Dir = base.Kernel }},
		{"dir is a symlink", func(c *virt.VMConfig) { c.Dir = link }},
		{"dir others may write", func(c *virt.VMConfig) { c.Dir = open }},
		{"dir too long for its socket", func(c *virt.VMConfig) { c.Dir = "/" + strings.Repeat("d", 100) }},
		{"no kernel", func(c *virt.VMConfig) { c.Kernel = "" }},
		{"relative kernel", func(c *virt.VMConfig) { c.Kernel = "vmlinuz" }},
		{"kernel a directory", func(c *virt.VMConfig) { c.Kernel = base.Dir }},
		{"missing initrd", func(c *virt.VMConfig) { c.Initrd = base.Kernel + "-missing" }},
		{"empty kernel parameter", func(c *virt.VMConfig) { c.KernelParams = []string{"quiet", ""} }},
		{"newline in a parameter", func(c *virt.VMConfig) { c.KernelParams = []string{"a\ninit=/bin/sh"} }},
		{"long command line", func(c *virt.VMConfig) { c.KernelParams = []string{strings.Repeat("x", maxCmdlineLen+1)} }},
		{"no vCPU", func(c *virt.VMConfig) { c.VCPUs = 0 }},
		{"too many vCPUs", func(c *virt.VMConfig) { c.VCPUs = maxVCPUs + 1 }},
		{"too little memory", func(c *virt.VMConfig) { c.MemoryMiB = minMemoryMiB - 1 }},
		{"too much memory", func(c *virt.VMConfig) { c.MemoryMiB = maxMemoryMiB + 1 }},
		{"negative slots", func(c *virt.VMConfig) { c.DiskSlots = -1 }},
		{"too many slots", func(c *virt.VMConfig) { c.DiskSlots = MaxDiskSlots + 1 }},
		{"relative cgroup", func(c *virt.VMConfig) { c.Cgroup = "pod" }},
		{"cgroup with ..", func(c *virt.VMConfig) { c.Cgroup = "/kubepods/../x" }},
		{"root cgroup", func(c *virt.VMConfig) { c.Cgroup = "/" }},
	} {
		c := *base
		tc.mod(&c)
		if _, err := checkConfig(&c); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%s: err = %v, want ErrInvalidArgument", tc.name, err)
		}
	}
	if _, err := checkConfig(nil); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("nil config: %v", err)
	}
	cc, err := checkConfig(base)
	if err != nil {
		t.Fatal(err)
	}
	if cc.Cmdline != "console=ttyS0 quiet" || cc.VCPUs != 1 || cc.MemoryMiB != 64 || cc.DiskSlots != 2 || cc.Dir != base.Dir {
		t.Errorf("child config %+v", cc)
	}
}
