package nested

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/huskrt/husk/internal/guestimage"
	"github.com/huskrt/husk/test/devenv"
)

// netModules are the outer kernel's modules a pod network needs beside
// tun (OuterModules): the veth pair a CNI plugin would make, and tc's
// ingress qdisc, u32 filter and mirred action that join it to the VM's tap.
var netModules = []string{"veth", "sch_ingress", "cls_u32", "act_mirred"}

// netScenario plays a CNI plugin (netpod up: a namespace with eth0 of a
// veth pair, 10.213.77.2/30) and runs a VM container in that namespace on
// husk's VMM; the outer guest reaches a server in the inner guest at the
// pod's address, and after the container is removed nothing of husk's is
// left in the namespace.
const netScenario = `
VIRT="--runtime $RUNTIME --annotation io.husk.handler=virt"
chmod 755 /bin/netpod
for m in ` + "veth sch_ingress cls_u32 act_mirred" + `; do insmod /lib/modules/net/$m.ko || fail "insmod $m"; done
netpod up pod0 || fail "netpod up pod0"
t=$(up)
ctr run -d $VIRT --with-ns network:/run/netns/pod0 "$IMAGE" net1 sh -c 'while true; do { echo hello from the guest; ip -o -4 addr show dev eth0; } | nc -l -p 8080; done' 2> /tmp/net1.err || fail "ctr run -d net1: $(cat /tmp/net1.err)"
out=$(netpod get 10.213.77.2:8080 240 2> /tmp/get.err) || fail "netpod get: $(cat /tmp/get.err)"
note "time: virt pod network, ctr run -d to the guest's first answer at the pod's address: $(since $t) s"
case "$out" in
"hello from the guest"*"inet 10.213.77.2/30"*) note "ok: net: the outer guest reaches a server in the VM at the pod's address, on the pod's eth0" ;;
*) fail "net: the guest answered '$out'" ;;
esac
expect "net: a tap and two ingress qdiscs in the namespace while the pod runs" "$(netpod left pod0 | wc -l)" 3
ctr task kill -s SIGKILL net1 || fail "ctr task kill net1"
wait_stopped net1
ctr task delete net1 > /dev/null 2>&1 || fail "ctr task delete net1"
ctr containers delete net1 || fail "ctr containers delete net1"
wait_no_vmm "net: no VMM process after the pod's deletion"
expect "net: no tap, qdisc or filter left in the pod's namespace" "$(netpod left pod0)" ""
netpod down pod0 || fail "netpod down pod0"
check_clean
`

// TestNestedVMPodNetwork is the pod network on husk's VMM, in the outer
// guest of a containerd run (which has a /dev/kvm): ctr run --with-ns
// network:<netns> boots the VM with a NIC over a tap in the pod's
// namespace, joined to its eth0 by tc; the outer guest reaches a server
// in the VM at the pod's address; nothing is left in the namespace after.
func TestNestedVMPodNetwork(t *testing.T) {
	repo, as := nestedSetup(t, "about three minutes (a containerd run)")
	tools, err := FindContainerdTools(repo)
	skipIfMissing(t, err)

	dir := t.TempDir()
	shim := filepath.Join(dir, "containerd-shim-husk-v2")
	skipIfMissing(t, BuildShim(context.Background(), repo, shim))
	netpod, err := os.ReadFile(buildStatic(t, repo, dir, "./test/nested/netpod", "netpod"))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{"bin/netpod": netpod}
	for _, m := range netModules {
		b, err := as.Kernel.Module(m)
		skipIfMissing(t, err)
		files["lib/modules/net/"+m+".ko"] = b
	}
	agent := buildAgent(t, repo, dir)
	img := filepath.Join(dir, "guest")
	if _, err := guestimage.Build(context.Background(), guestimage.Options{
		KernelDir: filepath.Join(repo, ".tools", "kernel", "cloud-amd64"), Agent: agent, OutDir: img}); err != nil {
		t.Fatal(err)
	}
	image := filepath.Join(dir, "busybox.tar")
	if err := devenv.BusyboxImage(image, ContainerdImageRef); err != nil {
		t.Fatal(err)
	}
	var tee io.Writer
	if testing.Verbose() {
		tee = prefixWriter{os.Stderr}
	}
	run := func() (*ContainerdResult, error) {
		ctx, cancel := context.WithTimeout(context.Background(), containerdTimeout)
		defer cancel()
		return RunContainerd(ctx, as, ContainerdConfig{
			Tools: tools, Shim: shim, Image: image, Files: files,
			GuestKernel:     filepath.Join(img, guestimage.KernelFile),
			GuestInitrd:     filepath.Join(img, guestimage.InitrdFile),
			GuestManifest:   filepath.Join(img, guestimage.ManifestFile),
			Scenario:        netScenario,
			ScenarioTimeout: 300 * time.Second,
		}, dir, tee)
	}
	r, err := run()
	if r != nil && r.Frozen {
		t.Logf("attempt 1: %v after %v, retrying once; console:\n%s", err, r.Wall.Round(time.Millisecond), tail(r.Console, 30))
		r, err = run()
	}
	if r == nil {
		t.Fatal(err)
	}
	if err != nil || !r.Passed() {
		t.Fatalf("verdict %q after %v (qemu: %v)\nconsole:\n%s", r.Verdict, r.Wall.Round(time.Millisecond), err, tail(r.Console, 200))
	}
	for _, l := range r.Lines() {
		t.Log(l)
	}
	t.Logf("nested VM pod network: PASS in %v wall", r.Wall.Round(time.Millisecond))
}
