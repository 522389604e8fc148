package cli

import (
	"errors"
	"io"
	"testing"

	"github.com/huskrt/husk/vmm"
)

func TestParse(t *testing.T) {
	cfg, timeout, closer, err := Parse([]string{
		"--kernel", "/k", "--initrd", "/i", "--append", "console=ttyS0", "--mem", "1G", "--cpus", "2",
		"--disk", "/a.img", "--disk", "/b.img,ro,id=data", "--rng", "--timeout", "30s", "--vsock", "3,/run/v.sock",
		"--net", "tap0", "--net", "tap1,mac=52:54:00:aa:bb:cc", "--disk-slots", "3",
	}, io.Discard, io.Discard)
	if err != nil || closer != nil {
		t.Fatal(err)
	}
	if cfg.Kernel != "/k" || cfg.Initrd != "/i" || cfg.Cmdline != "console=ttyS0" || cfg.MemorySize != 1<<30 || cfg.VCPUs != 2 || !cfg.RNG || timeout.Seconds() != 30 || cfg.DiskSlots != 3 {
		t.Errorf("config %+v, timeout %v", cfg, timeout)
	}
	if cfg.Vsock == nil || *cfg.Vsock != (vmm.Vsock{CID: 3, UDSPath: "/run/v.sock"}) {
		t.Errorf("vsock %+v", cfg.Vsock)
	}
	want := []vmm.Disk{{Path: "/a.img"}, {Path: "/b.img", ReadOnly: true, ID: "data"}}
	if len(cfg.Disks) != 2 || cfg.Disks[0] != want[0] || cfg.Disks[1] != want[1] {
		t.Errorf("disks %+v", cfg.Disks)
	}
	nets := []vmm.Net{{Tap: "tap0"}, {Tap: "tap1", MAC: [6]byte{0x52, 0x54, 0, 0xaa, 0xbb, 0xcc}}}
	if len(cfg.Nets) != 2 || cfg.Nets[0] != nets[0] || cfg.Nets[1] != nets[1] {
		t.Errorf("nets %+v", cfg.Nets)
	}
}

func TestParseRejects(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"--kernel", "/k", "extra"},
		{"--kernel", "/k", "--mem", "0"},
		{"--kernel", "/k", "--mem", "12X"},
		{"--kernel", "/k", "--disk", ",ro"},
		{"--kernel", "/k", "--disk", "/a,rx"},
		{"--kernel", "/k", "--vsock", "3"},
		{"--kernel", "/k", "--net", ""},
		{"--kernel", "/k", "--net", "tap0,mac=zz"},
		{"--kernel", "/k", "--net", "tap0,mtu=9000"},
		{"--kernel", "/k", "--vsock", "x,/p"},
		{"--kernel", "/k", "--disk-slots", "-1"},
		{"--kernel", "/k", "--disk-slots", "20"},
		{"--kernel", "/k", "--disk-slots", "two"},
		{"--nope"},
	} {
		if _, _, _, err := Parse(args, io.Discard, io.Discard); !errors.Is(err, ErrUsage) && err == nil {
			t.Errorf("Parse(%q) = %v, want an error", args, err)
		}
	}
}

func TestParseSize(t *testing.T) {
	for s, want := range map[string]uint64{"256": 256 << 20, "256M": 256 << 20, "2G": 2 << 30, "65536K": 64 << 20} {
		if got, err := parseSize(s); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
}

func TestExitCode(t *testing.T) {
	for _, tt := range []struct {
		r    vmm.ExitReason
		err  error
		want int
	}{
		{vmm.ExitPowerOff, nil, 0},
		{vmm.ExitReboot, nil, 2},
		{vmm.ExitStopped, errors.New("deadline"), 3},
		{vmm.ExitFailed, errors.New("triple fault"), 1},
		{vmm.ExitFailed, ErrUsage, 64},
	} {
		if got := ExitCode(tt.r, tt.err); got != tt.want {
			t.Errorf("ExitCode(%v, %v) = %d, want %d", tt.r, tt.err, got, tt.want)
		}
	}
}
