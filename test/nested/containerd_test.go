package nested

import (
	"testing"
	"time"
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

# Stdin to its end, output and an exit status, from a container that
# sees the guest's command line: it runs in a VM.
t=$(up)
out=$(printf 'line one\nline two\n' | ctr run --rm $VIRT "$IMAGE" v-hello sh -c 'cat; echo hello; grep -o ` + ContainerdGuestMarker + ` /proc/cmdline; exit 3' 2> /tmp/v-hello.err)
rc=$?
[ $rc = 3 ] || note "ctr run v-hello: $(cat /tmp/v-hello.err)"
note "time: virt ctr run --rm, start to end (shim, VM boot, rootfs image, create, start, exit, delete): $(since $t) s"
expect "virt: stdin reaches the process to its end, its output reaches ctr, from inside the VM" "$out" "$(printf 'line one\nline two\nhello\n` + ContainerdGuestMarker + `')"
expect "virt: exit status 3 reaches ctr" "$rc" 3
wait_no_vmm "virt: no VMM process after ctr run --rm"

# A terminal: ctr run -t needs one of its own.
ptyrun ctr run --rm -t $VIRT "$IMAGE" v-tty sh -c 'test -t 0 && test -t 1 && echo tty-ok $(tty); exit 4' > /tmp/v-tty.out 2>&1
rc=$?
expect "virt: ctr run -t, the process has a terminal" "$(tr -d '\r' < /tmp/v-tty.out)" "tty-ok /dev/pts/0"
expect "virt: ctr run -t, exit status 4 reaches ctr" "$rc" 4

# A shim group (io.husk.group): one shim, but each container its own
# sandbox, so its own VM; the shim outlives the first one's deletion.
# Then R1 on the second.
grp="--annotation io.husk.group=g1"
ctr run -d $VIRT $grp "$IMAGE" grp-a sleep 1000 || fail "ctr run -d grp-a"
ctr run -d $VIRT $grp "$IMAGE" grp-b sleep 1000 || fail "ctr run -d grp-b"
wait_status grp-a RUNNING
wait_status grp-b RUNNING
expect "virt group: one shim for two containers" "$(shim_pids | wc -l)" 1
expect "virt group: a VM for each container" "$(vmm_pids | wc -l)" 2
ba=$(ctr task exec --exec-id b1 grp-a cat /proc/sys/kernel/random/boot_id)
bb=$(ctr task exec --exec-id b2 grp-b cat /proc/sys/kernel/random/boot_id)
[ -n "$ba" ] && [ -n "$bb" ] && [ "$ba" != "$bb" ] || fail "virt group: boot ids '$ba' and '$bb' are not two guests'"
ctr task kill -s SIGKILL grp-a || fail "ctr task kill grp-a"
wait_stopped grp-a
ctr task delete grp-a > /dev/null 2>&1 || fail "ctr task delete grp-a"
ctr containers delete grp-a || fail "ctr containers delete grp-a"
i=0
while [ "$(vmm_pids | wc -l)" != 1 ] && [ $i -lt 50 ]; do usleep 200000; i=$((i+1)); done
expect "virt group: the other container's VM and the shim stay" "$(vmm_pids | wc -l) $(shim_pids | wc -l)" "1 1"
expect "virt group: the other container still answers" "$(ctr task exec --exec-id b3 grp-b echo still-here)" "still-here"

# R1: the shim of a running VM container (grp-b) is killed; containerd
# runs the shim's delete, and the deletes must leave no VMM process. A
# VMM process ends by itself when its shim's end of the control channel
# closes; it is stopped (SIGSTOP) first, so that only the delete command's
# cleanup (the recorded pid, checked by its start time) can end it.
vmm=$(vmm_pids)
shim=$(shim_pids group:g1)
[ -n "$vmm" ] && [ -n "$shim" ] || fail "R1: VMM process '$vmm', shim '$shim'"
kill -STOP $vmm
usleep 100000
expect "R1: the VMM process is stopped" "$(cut -d' ' -f3 /proc/$vmm/stat)" "T"
t=$(up)
kill -9 $shim
# containerd sees the shim go, runs its delete and forgets the task.
i=0
while ctr task ls | grep -q '^grp-b .*RUNNING' && [ $i -lt 150 ]; do usleep 200000; i=$((i+1)); done
ctr task delete grp-b > /dev/null 2>&1
ctr task ls | grep -q '^grp-b ' && fail "R1: task grp-b left after ctr task delete"
ctr containers delete grp-b || fail "ctr containers delete grp-b"
wait_no_vmm "R1: no VMM process after the shim's SIGKILL and the deletes"
note "time: R1, the shim's SIGKILL to no VMM process: $(since $t) s"
grep -q 'msg="cleaning up dead shim" id=grp-b ' /tmp/containerd.log || fail "R1: containerd did not clean up after the dead shim"

# A pod outside CRI: the CRI's annotations make pod1 the pod's sandbox
# (pause) container, which runs nothing in the guest, and join pod1-a and
# pod1-b to its shim and its VM. pod1-a's ctr run waits for it: execs into
# it (output, status, stdin, a terminal), then a SIGKILL whose status
# reaches that ctr run; pod1-b is paused and resumed, then traps the
# SIGTERM that ctr task kill --all sends to all its processes.
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
mem=$(cat /sys/fs/cgroup/$CONTAINERD_NAMESPACE/pod1/memory.current)
[ "$mem" -gt $((32 << 20)) ] && note "ok: virt pod: the VM's cgroup is charged its guest's memory ($((mem >> 20)) MiB)" ||
  fail "virt pod: the VM's cgroup is charged '$mem' bytes, not the guest's memory"
ctr task metrics pod1-a > /tmp/pod1-a.metrics 2>&1 || fail "ctr task metrics pod1-a: $(cat /tmp/pod1-a.metrics)"
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
ctr task pause pod1-b || fail "ctr task pause pod1-b"
wait_status pod1-b PAUSED && note "ok: virt: ctr task pause"
ctr task resume pod1-b || fail "ctr task resume pod1-b"
wait_status pod1-b RUNNING && note "ok: virt: ctr task resume"
n=$(ctr task ps pod1-a | tail -n +2 | wc -l)
[ "$n" -ge 1 ] && note "ok: virt: ctr task ps lists the guest's processes ($n)" || fail "virt: ctr task ps pod1-a: $(ctr task ps pod1-a 2>&1)"
ctr task kill --all pod1-b || fail "ctr task kill --all pod1-b"
wait_stopped pod1-b
out=$(ctr task delete pod1-b 2>&1 | grep -o 'exit code [0-9]*')
expect "virt pod: SIGTERM to all of pod1-b ends it through its trap, status 42" "$out" "exit code 42"
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

check_clean
`

// The containerd run's bounds. Its scenario takes about 2 minutes of the
// outer guest's time on a quiet 2-core machine (five VM boots of 6 to 14 s
// in TCG, and the rest) and three times that with other QEMUs and builds
// beside it; a hang must still fail, not stall CI.
const containerdScenarioTimeout = 420 * time.Second

// TestNestedContainerd is husk end to end through a real containerd, in
// the outer guest (which has a /dev/kvm): a private containerd 2.x with
// the static husk shim on its PATH, driven by ctr (see containerd_initrd.go).
// The Linux handler runs linuxScenario. Then the VM handler, each
// container in a VM booted from the guest image (make guest, built here)
// by husk's VMM in its confined process (virtScenario): a ctr run's stdin,
// output and exit status (from inside the guest); a terminal; a shim
// group (one shim, a VM for each of its containers) and R1 on it (the
// shim SIGKILLed with a VM running, its VMM process stopped so that it
// cannot end by itself: containerd's cleanup and the deletes leave no VMM
// process); a pod (the CRI's annotations): its sandbox container and two
// others in one shim and one VM, execs into one (output, status, stdin, a
// terminal), kills whose status reaches ctr. After each container's end
// no VMM process is left, and at the end no task, container, shim, mount,
// state directory, per-container disk image or cgroup.
func TestNestedContainerd(t *testing.T) {
	r := setupContainerdRun(t, "about four minutes (a containerd run)", ctrRunOptions{ptyrun: true})
	res := r.run(t, linuxScenario+virtScenario, containerdScenarioTimeout)
	t.Logf("nested containerd run: PASS in %v wall, outer initrd %.1f MiB", res.Wall.Round(time.Millisecond), float64(res.InitrdSize)/(1<<20))
}
