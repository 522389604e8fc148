package nested

// netModules are the outer kernel's modules a pod network needs beside
// tun (OuterModules): the veth pair a CNI plugin would make, and tc's
// ingress qdisc, u32 filter and mirred action that join it to the VM's tap.
var netModules = []string{"veth", "sch_ingress", "cls_u32", "act_mirred"}

// netScenario plays a CNI plugin (netpod up: a namespace with eth0 of a
// veth pair, 10.213.77.2/30) and runs a VM container in that namespace on
// husk's VMM; the outer guest reaches a server in the inner guest at the
// pod's address, and after the container is removed nothing of husk's is
// left in the namespace. TestNestedPods runs it.
const netScenario = `
VIRT="--runtime $RUNTIME --annotation io.husk.handler=virt"
chmod 755 /bin/netpod
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
