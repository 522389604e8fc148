package qemu

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/huskrt/husk/runtime/virt"
)

// twoFDChannel is a channel whose devices name two inherited descriptors.
type twoFDChannel struct{ noAgentChannel }

func (twoFDChannel) devices(first int) ([]string, []*os.File) {
	return []string{"-device", "chan,fd=" + itoa(first) + ",fd2=" + itoa(first+1)}, []*os.File{os.Stdin, os.Stdout}
}

func itoa(i int) string { return strconv.Itoa(i) }

// value returns the argument after the first occurrence of opt.
func value(a []string, opt string) string {
	i := slices.Index(a, opt)
	if i < 0 || i+1 >= len(a) {
		return ""
	}
	return a[i+1]
}

// values returns the arguments after each occurrence of opt.
func values(a []string, opt string) []string {
	var vs []string
	for i := 0; i+1 < len(a); i++ {
		if a[i] == opt {
			vs = append(vs, a[i+1])
		}
	}
	return vs
}

func TestArgs(t *testing.T) {
	cfg := &virt.VMConfig{
		ID: "pod,id=evil", Kernel: "/img/vmlinuz", Initrd: "/img/initrd.img",
		KernelParams: []string{"console=ttyS0", "panic=-1"}, VCPUs: 2, MemoryMiB: 512, DiskSlots: 3,
	}
	for _, tc := range []struct{ accel, cpu string }{{AccelKVM, "host"}, {AccelTCG, "max"}} {
		a := args(cfg, tc.accel, twoFDChannel{})
		if m := value(a, "-machine"); !strings.HasPrefix(m, "q35,accel="+tc.accel+",") {
			t.Errorf("%s: -machine %q", tc.accel, m)
		}
		if c := value(a, "-cpu"); c != tc.cpu {
			t.Errorf("%s: -cpu %q, want %q", tc.accel, c, tc.cpu)
		}
	}
	a := args(cfg, AccelTCG, twoFDChannel{})
	for opt, want := range map[string]string{
		"-name": "husk-pod,,id=evil", "-smp": "2", "-m": "512",
		"-kernel": "/img/vmlinuz", "-initrd": "/img/initrd.img", "-append": "console=ttyS0 panic=-1",
		"-sandbox": "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
		"-mon":     "chardev=qmp,mode=control",
	} {
		if got := value(a, opt); got != want {
			t.Errorf("%s %q, want %q", opt, got, want)
		}
	}
	for _, flag := range []string{"-nodefaults", "-no-user-config", "-no-reboot", "-S"} {
		if !slices.Contains(a, flag) {
			t.Errorf("no %s in %q", flag, a)
		}
	}
	if !slices.Contains(values(a, "-chardev"), "socket,id=qmp,fd=3") {
		t.Errorf("QMP is not on fd 3: %q", values(a, "-chardev"))
	}
	var ports []string
	for _, d := range values(a, "-device") {
		if strings.HasPrefix(d, "pcie-root-port,") {
			ports = append(ports, d)
		}
	}
	if len(ports) != 3 || !strings.Contains(ports[2], "id=slot2,") || !strings.Contains(ports[2], "chassis=3") {
		t.Errorf("root ports %q, want slot0..slot2 with chassis 1..3", ports)
	}
	if d := values(a, "-device"); d[len(d)-1] != "chan,fd=4,fd2=5" {
		t.Errorf("the channel's device %q, want its descriptors after QMP's", d[len(d)-1])
	}
}

func TestCheckConfig(t *testing.T) {
	good := virt.VMConfig{ID: "p", Dir: "/run/p", Kernel: "k", Initrd: "i", VCPUs: 1, MemoryMiB: 128, DiskSlots: 2}
	if err := checkConfig(&good); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*virt.VMConfig){
		"no id":           func(c *virt.VMConfig) { c.ID = "" },
		"relative dir":    func(c *virt.VMConfig) { c.Dir = "run/p" },
		"no kernel":       func(c *virt.VMConfig) { c.Kernel = "" },
		"no vcpus":        func(c *virt.VMConfig) { c.VCPUs = 0 },
		"little memory":   func(c *virt.VMConfig) { c.MemoryMiB = 16 },
		"many slots":      func(c *virt.VMConfig) { c.DiskSlots = maxSlots + 1 },
		"relative binary": func(c *virt.VMConfig) { c.QEMU.Binary = "qemu" },
	} {
		c := good
		mut(&c)
		if err := checkConfig(&c); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%s: %v, want invalid argument", name, err)
		}
	}
}

func TestAccel(t *testing.T) {
	h := New()
	h.kvmOnce.Do(func() { h.kvmErr = errors.New("no KVM (test)") })
	ctx := context.Background()
	if a, err := h.accel(ctx, AccelAuto); a != AccelTCG || err != nil {
		t.Errorf("auto without KVM: %q, %v", a, err)
	}
	if _, err := h.accel(ctx, AccelKVM); err == nil {
		t.Error("kvm without KVM: no error")
	}
	if _, err := h.accel(ctx, "hvf"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("hvf: %v", err)
	}
	h = New()
	h.kvmOnce.Do(func() {})
	if a, _ := h.accel(ctx, AccelAuto); a != AccelKVM {
		t.Errorf("auto with KVM: %q", a)
	}
}

// TestStartWithoutChannel: a channel that cannot be opened fails Start at
// once, saying why, with nothing started.
func TestStartWithoutChannel(t *testing.T) {
	h := New()
	h.newChannel = func() (channel, error) { return nil, errdefs.ErrUnavailable }
	h.kvmOnce.Do(func() {})
	_, err := h.Start(context.Background(), &virt.VMConfig{ID: "p", Dir: t.TempDir(), Kernel: "k", Initrd: "i", VCPUs: 1, MemoryMiB: 128, DiskSlots: 1})
	if !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("Start: %v, want the channel's error", err)
	}
}

// TestStartOfAQEMUThatExits: a QEMU that exits before it answers QMP
// fails Start with how it ended, as soon as it ends (QMP sees the end of
// its socket: the shim keeps no copy of QEMU's end). The reply timeout is
// long enough that waiting for it would time the test out.
func TestStartOfAQEMUThatExits(t *testing.T) {
	f, err := exec.LookPath("false")
	if err != nil {
		t.Skip("no false(1) to stand for a QEMU that exits")
	}
	h := New()
	h.newChannel = func() (channel, error) { return noAgentChannel{}, nil }
	h.replyTimeout = time.Hour
	dir := t.TempDir()
	_, err = h.Start(context.Background(), &virt.VMConfig{ID: "p", Dir: dir, Kernel: "k", Initrd: "i", VCPUs: 1, MemoryMiB: 128,
		QEMU: virt.QEMUConfig{Binary: f, Accel: AccelTCG}})
	if !errors.Is(err, ErrQEMUFailed) {
		t.Errorf("Start: %v, want QEMU failed", err)
	}
	if _, err := os.Stat(filepath.Join(dir, recordName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the record after a failed Start: %v", err)
	}
}

// TestDiskStatsFromQEMU: only attached slots' devices count, each once,
// whatever else QEMU's reply holds; a reply that is not a list fails.
func TestDiskStatsFromQEMU(t *testing.T) {
	v := &vm{slots: []slot{{serial: "a", state: slotAttached}, {serial: "b", state: slotDetaching}, {}}}
	got, err := v.diskStats([]byte(`[
		{"qdev": "/machine/peripheral/blk0/virtio-backend", "stats": {"rd_operations": 3, "rd_bytes": 4096, "wr_operations": 1, "wr_bytes": 512}},
		{"qdev": "/machine/peripheral/blk0/virtio-backend", "stats": {"rd_operations": 99}},
		{"qdev": "/machine/peripheral/blk1/virtio-backend", "stats": {"rd_operations": 7}},
		{"qdev": "/machine/peripheral/blk10/virtio-backend", "stats": {"rd_operations": 8}},
		{"qdev": "/machine/peripheral/blk2/virtio-backend", "stats": {"rd_operations": 9}},
		{"qdev": "", "stats": {}}]`))
	want := []virt.DiskStats{{Serial: "a", Reads: 3, BytesRead: 4096, Writes: 1, BytesWritten: 512}}
	if err != nil || len(got) != 1 || got[0] != want[0] {
		t.Errorf("diskStats = %+v, %v; want %+v", got, err, want)
	}
	if _, err := v.diskStats([]byte(`{"rd_operations": 1}`)); !errors.Is(err, ErrQMP) {
		t.Errorf("an object: %v, want ErrQMP", err)
	}
}

func TestCredential(t *testing.T) {
	if c, err := credential(""); c != nil || err != nil {
		t.Errorf(`credential("") = %+v, %v; want the shim's user`, c, err)
	}
	for _, name := range []string{"root", "0"} {
		c, err := credential(name)
		if err != nil || c == nil || c.Uid != 0 || c.Gid != 0 {
			t.Errorf("credential(%q) = %+v, %v; want uid and gid 0", name, c, err)
		}
	}
	if _, err := credential("husk-no-such-user"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("an unknown user: %v, want invalid argument", err)
	}
}
