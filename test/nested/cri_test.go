package nested

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

// criPodConfig is the pod's sandbox configuration crictl runp reads: what
// kubelet sends for a plain pod (no cgroup_parent: the CRI's default
// cgroup, under /k8s.io), pod network and IPC, a PID namespace per
// container.
func criPodConfig(name string) map[string]any {
	return map[string]any{
		"metadata":      map[string]any{"name": name, "namespace": "husk-nested", "uid": name + "-uid", "attempt": 0},
		"hostname":      name,
		"log_directory": "/var/log/pods/" + name,
		"linux":         map[string]any{"security_context": map[string]any{"namespace_options": criNSOptions}},
	}
}

// criNSOptions are the pod's namespace options (CRI NamespaceMode: 0 pod,
// 1 container), repeated in each container's as kubelet does.
var criNSOptions = map[string]any{"network": 0, "pid": 1, "ipc": 0}

// criContainerConfig is a busybox container running cmd, logging to
// <name>.log in the pod's log directory.
func criContainerConfig(name string, cmd ...string) map[string]any {
	return map[string]any{
		"metadata": map[string]any{"name": name},
		"image":    map[string]any{"image": ContainerdImageRef},
		"command":  cmd,
		"log_path": name + ".log",
		"linux":    map[string]any{"security_context": map[string]any{"namespace_options": criNSOptions}},
	}
}

// criFiles are the pod's and its containers' configurations, by their
// path in the outer guest, under /etc/husk-nested/cri.
func criFiles(t *testing.T) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	for name, v := range map[string]any{
		"pod.json": criPodConfig("vmpod"),
		// The server answers each connection with a line and the pod's
		// address as the guest's eth0 has it.
		"server.json": criContainerConfig("server", "sh", "-c",
			"echo server-started; while true; do { echo hello from the pod; ip -o -4 addr show dev eth0; } | nc -l -p 8080; done"),
		"sidecar.json": criContainerConfig("sidecar", "sh", "-c", "echo sidecar-started; exec sleep 100000"),
	} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		files["etc/husk-nested/cri/"+name] = b
	}
	return files
}

// criScenario is a Kubernetes pod on husk's VMM, through crictl (see
// TestNestedPods).
const criScenario = `
chmod 755 /bin/netpod
C=/etc/husk-nested/cri
t=$(up)
pod=$(crictl runp --runtime ` + CRIVMHandler + ` $C/pod.json 2> /tmp/runp.err) || fail "crictl runp: $(cat /tmp/runp.err)"
note "time: crictl runp (the pod's VM booted on husk's VMM): $(since $t) s"
server=$(crictl create --no-pull "$pod" $C/server.json $C/pod.json 2> /tmp/create.err) || fail "crictl create server: $(cat /tmp/create.err)"
crictl start "$server" > /dev/null 2> /tmp/start.err || fail "crictl start server: $(cat /tmp/start.err)"
cri_wait_running "$server" && note "time: crictl runp to the first container running: $(since $t) s"
sidecar=$(crictl create --no-pull "$pod" $C/sidecar.json $C/pod.json 2> /tmp/create.err) || fail "crictl create sidecar: $(cat /tmp/create.err)"
crictl start "$sidecar" > /dev/null 2> /tmp/start.err || fail "crictl start sidecar: $(cat /tmp/start.err)"
cri_wait_running "$sidecar"
expect "cri: the pod's two containers run" "$(cri_state $server) $(cri_state $sidecar)" "CONTAINER_RUNNING CONTAINER_RUNNING"
expect "cri: one VMM process for the pod" "$(vmm_pids | wc -l)" 1
expect "cri: one shim for the pod" "$(shim_pids | wc -l)" 1

ip=$(crictl inspectp -o go-template --template '{{.status.network.ip}}' "$pod")
case "$ip" in
` + criPrefix + `1) fail "cri: the pod's IP is the bridge's gateway" ;;
` + criPrefix + `*) note "ok: cri: the pod has an IP from the bridge plugin ($ip)" ;;
*) fail "cri: the pod's IP '$ip' is not of ` + CRISubnet + `" ;;
esac
t=$(up)
out=$(netpod get $ip:8080 120 2> /tmp/get.err) || fail "netpod get $ip:8080: $(cat /tmp/get.err)"
case "$out" in
"hello from the pod"*"inet $ip/24"*) note "ok: cri: the outer guest reaches a server in the pod at its IP, the guest's eth0 has it ($(since $t) s)" ;;
*) fail "cri: the pod answered '$out'" ;;
esac
ns=$(cri_netns "$pod")
[ -n "$ns" ] || fail "cri: no network namespace in the pod's spec"
expect "cri: a tap and two ingress qdiscs in the pod's namespace" "$(netpod left $ns | wc -l)" 3

out=$(crictl exec "$sidecar" sh -c 'echo exec-ok; cat /proc/sys/kernel/random/boot_id' 2> /tmp/exec.err) || fail "crictl exec: $(cat /tmp/exec.err)"
expect "cri: crictl exec" "$(echo "$out" | head -n 1)" "exec-ok"
bs=$(echo "$out" | tail -n 1)
[ -n "$bs" ] && [ "$bs" != "$(cat /proc/sys/kernel/random/boot_id)" ] || fail "cri: boot id '$bs' is not a guest's"
expect "cri: both containers in the pod's VM (boot id)" "$(crictl exec "$server" cat /proc/sys/kernel/random/boot_id)" "$bs"
# crictl exits 1 for any failure of an exec and names the exec's status:
# streaming (Exec) and synchronous (ExecSync, -s), as test/cri checks.
out=$(crictl exec "$sidecar" sh -c 'exit 3' 2>&1)
case "$?:$out" in
1:*"exit code 3"*) note "ok: cri: crictl exec reports the exit status" ;;
*) fail "cri: crictl exec of 'exit 3' said '$out'" ;;
esac
out=$(crictl exec -s "$sidecar" sh -c 'exit 4' 2>&1)
case "$?:$out" in
1:*"exited with 4"*) note "ok: cri: crictl exec -s reports the exit status" ;;
*) fail "cri: crictl exec -s of 'exit 4' said '$out'" ;;
esac
out=$(crictl exec -s "$sidecar" nc 127.0.0.1 8080 < /dev/null)
case "$out" in
"hello from the pod"*) note "ok: cri: the pod's containers share its network (the sidecar reaches the server at 127.0.0.1)" ;;
*) fail "cri: the sidecar got '$out' from 127.0.0.1:8080" ;;
esac
expect "cri: crictl logs" "$(crictl logs "$server" 2>&1 | head -n 1) $(crictl logs "$sidecar" 2>&1 | head -n 1)" "server-started sidecar-started"

crictl stopp "$pod" > /dev/null || fail "crictl stopp"
wait_no_vmm "cri: no VMM process after crictl stopp"
crictl rmp "$pod" > /dev/null || fail "crictl rmp"
cri_check_clean
`

// criSection is the line (after ctrMarker) that ends netScenario's
// part of TestNestedPods's run and starts criScenario's.
const criSection = "section: crictl"

// TestNestedPods is two pod scenarios on husk's own VMM in one outer
// guest of a containerd run (which has a /dev/kvm; one boot saves CI
// minutes of TCG), each a subtest that fails on its own part's failures:
//
// VMPodNetwork (netScenario): ctr run --with-ns network:<netns> boots a
// VM with a NIC over a tap in a pod's namespace (netpod plays the CNI
// plugin), joined to its eth0 by tc; the outer guest reaches a server in
// the VM at the pod's address; nothing is left in the namespace after.
//
// CRIPod (criScenario): a Kubernetes pod through crictl, containerd's
// CRI plugin and Debian's CNI bridge plugin (containerd_cri.go): crictl
// runp with the husk-vm handler boots the pod's VM; two containers are
// created and started in it; the pod has an IP from the bridge plugin,
// and the outer guest reaches a server in the pod at that IP (the guest's
// eth0 has it); the pod's namespace holds husk's tap and tc redirects;
// crictl exec (output, exit status, streaming and -s) and crictl logs
// work; both containers are in the one VM (boot id) and share the pod's
// network (loopback); after crictl stopp and rmp no pod, container, task,
// shim, VMM process, mount, husk state, network namespace, veth, tap,
// disk image or pod cgroup is left.
//
// A failure after both parts (the scenario's exit status, its watchdog)
// fails the test itself.
func TestNestedPods(t *testing.T) {
	r := setupContainerdRun(t, "about four minutes (a containerd run with the CRI)",
		ctrRunOptions{netpod: true, cri: true, modules: netModules})
	for p, b := range criFiles(t) {
		r.cfg.Files[p] = b
	}
	res := r.boot(t, netScenario+"\nnote '"+criSection+"'\n"+criScenario, 420*time.Second)
	lines := res.Lines()
	split := slices.Index(lines, ctrMarker+criSection)
	if split < 0 {
		t.Fatalf("no %q line: the network part did not end (verdict %q)\nconsole:\n%s", criSection, res.Verdict, tail(res.Console, 200))
	}
	failed := 0
	part := func(name string, lines []string) {
		t.Run(name, func(t *testing.T) {
			for _, l := range lines {
				if strings.HasPrefix(l, ctrMarker+"FAIL") {
					failed++
					t.Error(l)
				} else {
					t.Log(l)
				}
			}
		})
	}
	part("VMPodNetwork", lines[:split])
	part("CRIPod", lines[split+1:])
	switch {
	case !res.Passed():
		t.Fatalf("verdict %q after %v\nconsole:\n%s", res.Verdict, res.Wall.Round(time.Millisecond), tail(res.Console, 200))
	case failed > 0:
		t.Fatalf("%d failures printed, yet the verdict is %q", failed, res.Verdict)
	}
	t.Logf("nested pods: PASS in %v wall, outer initrd %.1f MiB", res.Wall.Round(time.Millisecond), float64(res.InitrdSize)/(1<<20))
}
