package nested

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/huskrt/husk/internal/guestimage"
	"github.com/huskrt/husk/test/devenv"
)

// linuxScenario drives husk's Linux handler through ctr: output, an exit
// status, stdin to its end, and a detached container with an exec, a kill
// and deletes, after which nothing of husk may be left. The outer initrd
// holds no runc and no runc shim, so every container here ran under husk.
const linuxScenario = `
out=$(ctr run --rm --runtime "$RUNTIME" "$IMAGE" echo1 echo hello-from-husk)
expect "linux: ctr run prints" "$out" "hello-from-husk"

ctr run --rm --runtime "$RUNTIME" "$IMAGE" exit3 sh -c 'exit 3'
expect "linux: ctr run exit status" "$?" 3

out=$(printf 'line one\nline two\n' | ctr run --rm --runtime "$RUNTIME" "$IMAGE" stdin1 sh -c 'cat; echo done')
expect "linux: stdin reaches the process, then its end" "$out" "$(printf 'line one\nline two\ndone')"

ctr run -d --runtime "$RUNTIME" "$IMAGE" det1 sleep 1000 || fail "ctr run -d det1"
wait_status det1 RUNNING
pid=$(ctr task ls | awk '$1 == "det1" { print $2 }')
grep -q "^0::/$CONTAINERD_NAMESPACE/det1\(/\|$\)" /proc/$pid/cgroup || fail "linux: det1 (pid $pid) is not in its cgroup: $(cat /proc/$pid/cgroup)"
out=$(ctr task exec --exec-id e1 det1 sh -c 'echo exec-ok $(cat /proc/1/comm)')
expect "linux: ctr task exec" "$out" "exec-ok sleep"
ctr task exec --exec-id e2 det1 sh -c 'exit 7'
expect "linux: ctr task exec exit status" "$?" 7
ctr task kill -s SIGKILL det1 || fail "ctr task kill det1"
wait_stopped det1
ctr task delete det1 > /dev/null 2>&1 || fail "ctr task delete det1"
ctr containers delete det1 || fail "ctr containers delete det1"
check_clean
`

// virtScenario drives the VM handler through ctr, each check a line (see
// TestNestedContainerd).
const virtScenario = `
VIRT="--runtime $RUNTIME --annotation io.husk.handler=virt"

# Output and an exit status, from a container that sees the guest's
# command line: it runs in a VM.
t=$(up)
out=$(ctr run --rm $VIRT "$IMAGE" v-hello sh -c 'echo hello; grep -o ` + ContainerdGuestMarker + ` /proc/cmdline; exit 3' 2> /tmp/v-hello.err)
rc=$?
[ $rc = 3 ] || note "ctr run v-hello: $(cat /tmp/v-hello.err)"
note "time: virt ctr run --rm, start to end (shim, VM boot, rootfs image, create, start, exit, delete): $(since $t) s"
expect "virt: output reaches ctr, from inside the VM" "$out" "$(printf 'hello\n` + ContainerdGuestMarker + `')"
expect "virt: exit status 3 reaches ctr" "$rc" 3
wait_no_vmm "virt: no VMM process after ctr run --rm"

# Standard input, to its end.
out=$(printf 'line one\nline two\n' | ctr run --rm $VIRT "$IMAGE" v-stdin sh -c 'cat; echo done' 2> /tmp/v-stdin.err) ||
  note "ctr run v-stdin: $(cat /tmp/v-stdin.err)"
expect "virt: stdin reaches the process, then its end" "$out" "$(printf 'line one\nline two\ndone')"

# A terminal: ctr run -t needs one of its own.
ptyrun ctr run --rm -t $VIRT "$IMAGE" v-tty sh -c 'test -t 0 && test -t 1 && echo tty-ok $(tty); exit 4' > /tmp/v-tty.out 2>&1
rc=$?
expect "virt: ctr run -t, the process has a terminal" "$(tr -d '\r' < /tmp/v-tty.out)" "tty-ok /dev/pts/0"
expect "virt: ctr run -t, exit status 4 reaches ctr" "$rc" 4

# A pod outside CRI: the CRI's annotations make pod1 the pod's sandbox
# (pause) container, which runs nothing in the guest, and join pod1-a and
# pod1-b to its shim and its VM. pod1-a's ctr run waits for it: execs into
# it (output, status, stdin, a terminal), then a SIGKILL whose status
# reaches that ctr run; pod1-b traps SIGTERM.
ann="--annotation io.kubernetes.cri.container-type=container --annotation io.kubernetes.cri.sandbox-id=pod1"
t=$(up)
ctr run -d $VIRT --annotation io.kubernetes.cri.container-type=sandbox "$IMAGE" pod1 /pause || fail "ctr run -d pod1"
wait_status pod1 RUNNING
note "time: virt pod sandbox (VM booted) running after $(since $t) s"
t=$(up)
ctr run --rm $VIRT $ann "$IMAGE" pod1-a sleep 1000 < /dev/null > /tmp/pod1-a.out 2>&1 &
runpid=$!
wait_status pod1-a RUNNING
note "time: virt container in the running VM running after $(since $t) s"
ctr run -d $VIRT $ann "$IMAGE" pod1-b sh -c 'trap "exit 42" TERM; while true; do sleep 1; done' || fail "ctr run -d pod1-b"
wait_status pod1-b RUNNING
expect "virt pod: one VMM process for the pod's three containers" "$(vmm_pids | wc -l)" 1
expect "virt pod: one shim for the pod's three containers" "$(shim_pids | wc -l)" 1
vmm=$(vmm_pids)
grep -q "^0::/$CONTAINERD_NAMESPACE/pod1$" /proc/$vmm/cgroup || fail "virt: the VMM process is not in the sandbox container's cgroup: $(cat /proc/$vmm/cgroup)"
t=$(up)
out=$(ctr task exec --exec-id e1 pod1-a sh -c 'echo exec-ok $(cat /proc/1/comm)')
note "time: virt ctr task exec, start to end: $(since $t) s"
expect "virt: ctr task exec" "$out" "exec-ok sleep"
ctr task exec --exec-id e2 pod1-a sh -c 'exit 7'
expect "virt: ctr task exec exit status" "$?" 7
out=$(printf 'to the exec\n' | ctr task exec --exec-id e3 pod1-a cat)
expect "virt: stdin reaches an exec" "$out" "to the exec"
ptyrun ctr task exec -t --exec-id e4 pod1-a sh -c 'test -t 0 && echo exec-tty-ok' > /tmp/pod1-tty.out 2>&1
expect "virt: ctr task exec -t" "$(tr -d '\r' < /tmp/pod1-tty.out)" "exec-tty-ok"
ba=$(ctr task exec --exec-id b1 pod1-a cat /proc/sys/kernel/random/boot_id)
bb=$(ctr task exec --exec-id b2 pod1-b cat /proc/sys/kernel/random/boot_id)
[ -n "$ba" ] && [ "$ba" != "$(cat /proc/sys/kernel/random/boot_id)" ] || fail "virt pod: boot id '$ba' is not a guest's"
expect "virt pod: both containers in the same guest (boot id)" "$bb" "$ba"
ctr task kill pod1-b || fail "ctr task kill pod1-b"
wait_stopped pod1-b
out=$(ctr task delete pod1-b 2>&1 | grep -o 'exit code [0-9]*')
expect "virt pod: SIGTERM ends pod1-b through its trap, status 42" "$out" "exit code 42"
ctr containers delete pod1-b || fail "ctr containers delete pod1-b"
ctr task kill -s SIGKILL pod1-a || fail "ctr task kill pod1-a"
wait $runpid
expect "virt: ctr task kill -s SIGKILL ends a container, its ctr run sees 137" "$?" 137
expect "virt pod: the VM stays for the sandbox container" "$(vmm_pids | wc -l)" 1
ctr task kill pod1 || fail "ctr task kill pod1"
wait_stopped pod1
out=$(ctr task delete pod1 2>&1) || fail "ctr task delete pod1: $out"
expect "virt pod: SIGTERM ends the sandbox container with status 0" "$(echo "$out" | grep -o 'exit code [0-9]*')" ""
ctr containers delete pod1 || fail "ctr containers delete pod1"
wait_no_vmm "virt pod: no VMM process after the pod's deletion"

# R1: the shim of a running VM container is killed; containerd runs the
# shim's delete, and the deletes must leave no VMM process. A VMM process
# ends by itself when its shim's end of the control channel closes; it is
# stopped (SIGSTOP) first, so that only the delete command's cleanup
# (the recorded pid, checked by its start time) can end it.
ctr run -d $VIRT "$IMAGE" r1 sleep 1000 || fail "ctr run -d r1"
wait_status r1 RUNNING
vmm=$(vmm_pids)
shim=$(shim_pids r1)
[ -n "$vmm" ] && [ -n "$shim" ] || fail "R1: VMM process '$vmm', shim '$shim'"
kill -STOP $vmm
usleep 100000
expect "R1: the VMM process is stopped" "$(cut -d' ' -f3 /proc/$vmm/stat)" "T"
t=$(up)
kill -9 $shim
# containerd sees the shim go, runs its delete and forgets the task.
i=0
while ctr task ls | grep -q '^r1 .*RUNNING' && [ $i -lt 150 ]; do usleep 200000; i=$((i+1)); done
ctr task delete r1 > /dev/null 2>&1
ctr task ls | grep -q '^r1 ' && fail "R1: task r1 left after ctr task delete"
ctr containers delete r1 || fail "ctr containers delete r1"
wait_no_vmm "R1: no VMM process after the shim's SIGKILL and the deletes"
note "time: R1, the shim's SIGKILL to no VMM process: $(since $t) s"
grep -q 'msg="cleaning up dead shim" id=r1 ' /tmp/containerd.log || fail "R1: containerd did not clean up after the dead shim"

check_clean
`

// TestNestedContainerd is husk end to end through a real containerd, in
// the outer guest (which has a /dev/kvm): a private containerd 2.x with
// the static husk shim on its PATH, driven by ctr (see containerd_initrd.go).
// The Linux handler runs linuxScenario. Then the VM handler, each
// container in a VM booted from the guest image (make guest, built here)
// by husk's VMM in its confined process: a ctr run's output and exit
// status (from inside the guest), stdin, a terminal, execs into a running
// container (output, status, stdin, a terminal), a kill whose status
// reaches ctr, a pod (the CRI's annotations): its sandbox container and
// two others in one shim and one VM, and R1 (the shim of a running VM container is
// SIGKILLed, its VMM process stopped so that it cannot end by itself;
// containerd's cleanup and the deletes leave no VMM process).
// After each container's end no VMM process is left, and at the end no
// task, container, shim, mount, state directory, per-container disk image
// or cgroup.
func TestNestedContainerd(t *testing.T) {
	if testing.Short() {
		t.Skip("the containerd run boots QEMU TCG for about two minutes; skipped with -short")
	}
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skip("the nested-KVM harness needs linux/amd64")
	}
	wd, _ := os.Getwd()
	repo, err := RepoRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	as, err := FindAssets(repo)
	skipIfMissing(t, err)
	tools, err := FindContainerdTools(repo)
	skipIfMissing(t, err)

	dir := t.TempDir()
	shim := filepath.Join(dir, "containerd-shim-husk-v2")
	skipIfMissing(t, BuildShim(context.Background(), repo, shim))
	ptyrun := buildStatic(t, repo, dir, "./test/nested/ptyrun", "ptyrun")
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

	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	var tee io.Writer
	if testing.Verbose() {
		tee = prefixWriter{os.Stderr}
	}
	r, err := RunContainerd(ctx, as, ContainerdConfig{
		Tools: tools, Shim: shim, Ptyrun: ptyrun, Image: image,
		GuestKernel:   filepath.Join(img, guestimage.KernelFile),
		GuestInitrd:   filepath.Join(img, guestimage.InitrdFile),
		GuestManifest: filepath.Join(img, guestimage.ManifestFile),
		Scenario:      linuxScenario + virtScenario,
	}, dir, tee)
	if r == nil {
		t.Fatal(err)
	}
	if err != nil || !r.Passed() {
		t.Fatalf("verdict %q after %v (qemu: %v)\nconsole:\n%s", r.Verdict, r.Wall.Round(time.Millisecond), err, tail(r.Console, 200))
	}
	for _, l := range r.Lines() {
		t.Log(l)
	}
	t.Logf("nested containerd run: PASS in %v wall, outer initrd %.1f MiB", r.Wall.Round(time.Millisecond), float64(r.InitrdSize)/(1<<20))
}
