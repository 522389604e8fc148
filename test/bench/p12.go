package main

// P12 (shared/TARGETS.md): a VM container's start, `ctr run` to the
// container's first output, in the nested-KVM harness, on husk's VMM
// (the builtin hypervisor) and on the qemu backend with the same guest
// image, interleaved in one boot of the outer guest (test/nested's
// containerd run), each started with the same containerd, shim and image.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/huskrt/husk/internal/guestimage"
	"github.com/huskrt/husk/test/devenv"
	"github.com/huskrt/husk/test/nested"
)

// p12Runs is how many times each backend starts a container.
const p12Runs = 3

// p12Marker starts each measurement line on the outer console:
// "HUSK-P12: <backend> start <uptime> first <uptime>".
const p12Marker = "HUSK-P12: "

// p12Scenario alternates the backends; the uptimes are the outer guest's.
var p12Scenario = fmt.Sprintf(`
for i in %s; do
  for b in builtin qemu; do
    t0=$(up)
    first=""
    ctr run --rm --runtime io.containerd.husk.v2 --runtime-config-path /etc/husk/$b.toml \
      --annotation io.husk.handler=virt $IMAGE p12-$b-$i sh -c 'echo first' 2>&1 |
    while IFS= read -r line; do
      [ -z "$first" ] && [ "$line" = first ] && { first=1; echo "%s$b start $t0 first $(up)"; }
    done
  done
done
`, p12Iterations(p12Runs), p12Marker)

// p12Iterations is "1 2 … n", for a scenario's loop.
func p12Iterations(n int) string {
	s := "1"
	for i := 2; i <= n; i++ {
		s += " " + strconv.Itoa(i)
	}
	return s
}

// p12Times are each backend's seconds from ctr run to the first output.
type p12Times map[string][]float64

func p12(ctx context.Context, root, dir string) (p12Times, error) {
	as, err := nested.FindAssets(root)
	if err != nil {
		return nil, err
	}
	tools, err := nested.FindContainerdTools(root)
	if err != nil {
		return nil, err
	}
	guest, err := nested.BuildGuestImage(ctx, root, dir)
	if err != nil {
		return nil, err
	}
	shim := filepath.Join(dir, "containerd-shim-husk-v2")
	if err := nested.BuildShim(ctx, root, shim); err != nil {
		return nil, err
	}
	image := filepath.Join(dir, "busybox.tar")
	if err := devenv.BusyboxImage(image, nested.ContainerdImageRef); err != nil {
		return nil, err
	}
	qemuTOML := nested.DefaultHuskConfig + "hypervisor = \"qemu\"\n\n[virt.qemu]\nbinary = \"/usr/bin/qemu-system-x86_64\"\naccel = \"kvm\"\n"
	ctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	r, err := nested.RunContainerd(ctx, as, nested.ContainerdConfig{
		Tools: tools, Shim: shim, Image: image, QEMU: as.QEMU,
		GuestKernel:   filepath.Join(guest, guestimage.KernelFile),
		GuestInitrd:   filepath.Join(guest, guestimage.InitrdFile),
		GuestManifest: filepath.Join(guest, guestimage.ManifestFile),
		Files: map[string][]byte{
			"etc/husk/builtin.toml": []byte(nested.DefaultHuskConfig),
			"etc/husk/qemu.toml":    []byte(qemuTOML),
		},
		Scenario:        p12Scenario,
		ScenarioTimeout: 12 * time.Minute,
	}, dir, nil)
	if err != nil {
		return nil, err
	}
	times := p12Times{}
	re := regexp.MustCompile(regexp.QuoteMeta(p12Marker) + `(\S+) start (\S+) first (\S+)`)
	for _, m := range re.FindAllStringSubmatch(r.Console, -1) {
		t0, _ := strconv.ParseFloat(m[2], 64)
		t1, _ := strconv.ParseFloat(m[3], 64)
		times[m[1]] = append(times[m[1]], t1-t0)
	}
	if len(times["builtin"]) != p12Runs || len(times["qemu"]) != p12Runs || !r.Passed() {
		_ = os.WriteFile(filepath.Join(os.TempDir(), "husk-bench-p12-console.log"), []byte(r.Console), 0o644)
		return times, fmt.Errorf("P12 runs: builtin %d, qemu %d of %d (verdict %q; console in %s)", len(times["builtin"]), len(times["qemu"]), p12Runs,
			r.Verdict, filepath.Join(os.TempDir(), "husk-bench-p12-console.log"))
	}
	return times, nil
}
