package shim

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/containerd/containerd/api/types/runtimeoptions/v1"
	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	cri "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// criPod is a PodSandboxConfig as kubelet sends one, with every field the
// decoder reads set, and others it skips.
func criPod() *cri.PodSandboxConfig {
	return &cri.PodSandboxConfig{
		Metadata:     &cri.PodSandboxMetadata{Name: "web", Uid: "u-1", Namespace: "default", Attempt: 2},
		Hostname:     "web-0",
		LogDirectory: "/var/log/pods/default_web_u-1",
		DnsConfig:    &cri.DNSConfig{Servers: []string{"10.96.0.10"}, Searches: []string{"default.svc.cluster.local", "svc.cluster.local"}, Options: []string{"ndots:5"}},
		PortMappings: []*cri.PortMapping{{ContainerPort: 80, Protocol: cri.Protocol_TCP}},
		Labels:       map[string]string{"app": "web"},
		Annotations:  map[string]string{"io.husk.handler": "virt", "kubernetes.io/config.seen": "x"},
		Linux: &cri.LinuxPodSandboxConfig{
			CgroupParent: "/kubepods/burstable/podu-1",
			SecurityContext: &cri.LinuxSandboxSecurityContext{
				NamespaceOptions: &cri.NamespaceOption{Network: cri.NamespaceMode_POD, Pid: cri.NamespaceMode_CONTAINER, Ipc: cri.NamespaceMode_NODE},
				Privileged:       true,
				RunAsUser:        &cri.Int64Value{Value: 1000},
			},
			Sysctls:   map[string]string{"net.ipv4.ip_forward": "1"},
			Overhead:  &cri.LinuxContainerResources{MemoryLimitInBytes: 1},
			Resources: &cri.LinuxContainerResources{CpuPeriod: 100000, CpuQuota: 150000, CpuShares: 1536, MemoryLimitInBytes: 512 << 20, OomScoreAdj: -998},
		},
	}
}

func podOptions(t *testing.T, c *cri.PodSandboxConfig) *anypb.Any {
	t.Helper()
	a, err := anypb.New(c)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// The wire decoder reads what cri-api's own encoding wrote.
func TestDecodePodSandboxConfig(t *testing.T) {
	got, err := podConfig(podOptions(t, criPod()))
	if err != nil {
		t.Fatal(err)
	}
	want := &podSandboxConfig{
		Name: "web", UID: "u-1", Namespace: "default",
		Hostname: "web-0", LogDirectory: "/var/log/pods/default_web_u-1",
		DNS:         dnsConfig{Servers: []string{"10.96.0.10"}, Searches: []string{"default.svc.cluster.local", "svc.cluster.local"}, Options: []string{"ndots:5"}},
		Annotations: map[string]string{"io.husk.handler": "virt", "kubernetes.io/config.seen": "x"},
		Linux: linuxPodConfig{
			CgroupParent: "/kubepods/burstable/podu-1",
			Namespaces:   namespaceOption{Network: nsPod, PID: nsContainer, IPC: nsNode},
			Sysctls:      map[string]string{"net.ipv4.ip_forward": "1"},
			Resources:    &podResources{CPUPeriod: 100000, CPUQuota: 150000, CPUShares: 1536, Memory: 512 << 20},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decoded\n%+v\nwant\n%+v", got, want)
	}
	// A negative int64 (the CRI's "no quota") survives.
	c := criPod()
	c.Linux.Resources.CpuQuota = -1
	if got, err := podConfig(podOptions(t, c)); err != nil || got.Linux.Resources.CPUQuota != -1 {
		t.Errorf("cpu quota -1 decoded as %+v, %v", got.Linux.Resources, err)
	}
}

func TestPodConfigRefusesBadOptions(t *testing.T) {
	good := podOptions(t, criPod())
	ro, err := anypb.New(&runtimeoptions.Options{ConfigPath: "/x"})
	if err != nil {
		t.Fatal(err)
	}
	for name, a := range map[string]*anypb.Any{
		"none":        nil,
		"other type":  ro,
		"truncated":   {TypeUrl: good.TypeUrl, Value: good.Value[:len(good.Value)-3]},
		"wrong wire":  {TypeUrl: good.TypeUrl, Value: []byte{2 << 3, 1}}, // hostname (field 2) as a varint (wire type 0)
		"too large":   {TypeUrl: good.TypeUrl, Value: make([]byte, maxPodConfig+1)},
		"bad map":     {TypeUrl: good.TypeUrl, Value: []byte{7<<3 | 2, 2, 1 << 3, 5}}, // annotation key as a varint (wire type 0)
		"bad ns mode": {TypeUrl: good.TypeUrl, Value: []byte{8<<3 | 2, 6, 2<<3 | 2, 4, 1<<3 | 2, 2, 1<<3 | 2, 0}},
	} {
		if _, err := podConfig(a); !errdefs.IsInvalidArgument(err) {
			t.Errorf("%s: %v, want an invalid argument", name, err)
		}
	}
}

func TestSandboxSpec(t *testing.T) {
	c, err := podConfig(podOptions(t, criPod()))
	if err != nil {
		t.Fatal(err)
	}
	s := sandboxSpec("sb1", c, "/var/run/netns/cni-1")
	for k, v := range map[string]string{
		annContainerType: "sandbox", annSandboxID: "sb1", annSandboxName: "web", annSandboxNS: "default", annSandboxUID: "u-1",
		annSandboxCPUQuota: "150000", annSandboxCPUPer: "100000", annSandboxCPUShare: "1536", annSandboxMemory: "536870912",
		"io.husk.handler": "virt",
	} {
		if s.Annotations[k] != v {
			t.Errorf("annotation %s = %q, want %q", k, s.Annotations[k], v)
		}
	}
	if s.Hostname != "web-0" || s.Linux.CgroupsPath != "/kubepods/burstable/podu-1/sb1" {
		t.Errorf("hostname %q, cgroups path %q", s.Hostname, s.Linux.CgroupsPath)
	}
	ns := map[specs.LinuxNamespaceType]string{}
	for _, n := range s.Linux.Namespaces {
		ns[n.Type] = n.Path
	}
	want := map[specs.LinuxNamespaceType]string{specs.MountNamespace: "", specs.NetworkNamespace: "/var/run/netns/cni-1", specs.UTSNamespace: "", specs.PIDNamespace: ""}
	if !reflect.DeepEqual(ns, want) {
		t.Errorf("namespaces %v, want %v (IPC is the node's)", ns, want)
	}
	// A hostNetwork pod: no network or UTS namespace; a systemd parent.
	c.Linux.Namespaces.Network = nsNode
	c.Linux.CgroupParent = "kubepods-burstable-podu_1.slice"
	s = sandboxSpec("sb1", c, "")
	for _, n := range s.Linux.Namespaces {
		if n.Type == specs.NetworkNamespace || n.Type == specs.UTSNamespace {
			t.Errorf("hostNetwork pod has a %s namespace", n.Type)
		}
	}
	if s.Linux.CgroupsPath != "kubepods-burstable-podu_1.slice:cri-containerd:sb1" {
		t.Errorf("systemd cgroups path %q", s.Linux.CgroupsPath)
	}
}

func TestPodFiles(t *testing.T) {
	etc := t.TempDir()
	if err := os.WriteFile(filepath.Join(etc, "hosts"), []byte("127.0.0.1 localhost\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(etc, "resolv.conf"), []byte("nameserver 192.0.2.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := podConfig(podOptions(t, criPod()))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := writePodFiles(dir, c, etc); err != nil {
		t.Fatal(err)
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if got := read("resolv.conf"); got != "nameserver 10.96.0.10\nsearch default.svc.cluster.local svc.cluster.local\noptions ndots:5\n" {
		t.Errorf("resolv.conf from the pod's DNS config: %q", got)
	}
	if read("hosts") != "127.0.0.1 localhost\n" || read("hostname") != "web-0\n" {
		t.Errorf("hosts %q, hostname %q", read("hosts"), read("hostname"))
	}
	// No DNS config: the host's file.
	c.DNS = dnsConfig{}
	if err := writePodFiles(dir, c, etc); err != nil || read("resolv.conf") != "nameserver 192.0.2.1\n" {
		t.Errorf("resolv.conf without a DNS config: %q, %v", read("resolv.conf"), err)
	}
	// A value that would add a line of its own is refused.
	c.DNS = dnsConfig{Searches: []string{"a\nnameserver 6.6.6.6"}}
	if err := writePodFiles(dir, c, etc); !errdefs.IsInvalidArgument(err) {
		t.Errorf("a DNS search with a newline: %v", err)
	}
}

func TestPodFileMounts(t *testing.T) {
	s := &specs.Spec{Root: &specs.Root{Readonly: true}, Mounts: []specs.Mount{{Destination: "/etc/hosts/", Source: "/mine"}}}
	podFileMounts(s, "/b")
	got := map[string]string{}
	for _, m := range s.Mounts {
		got[m.Destination] = m.Source + " " + strings.Join(m.Options, ",")
	}
	want := map[string]string{
		"/etc/hosts/":      "/mine ",
		"/etc/resolv.conf": "/b/resolv.conf rbind,rprivate,ro",
		"/etc/hostname":    "/b/hostname rbind,rprivate,ro",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("mounts %v, want %v", got, want)
	}
}

func TestBundleOptions(t *testing.T) {
	dir := t.TempDir()
	if a, err := loadBundleOptions(dir); a != nil || err != nil {
		t.Fatalf("no options kept: %v, %v", a, err)
	}
	ro, err := anypb.New(&runtimeoptions.Options{ConfigBody: []byte("[virt]\n")})
	if err != nil {
		t.Fatal(err)
	}
	other, err := anypb.New(&cri.PodSandboxMetadata{Name: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if err := saveBundleOptions(dir, []*anypb.Any{other, ro}); err != nil {
		t.Fatal(err)
	}
	a, err := loadBundleOptions(dir)
	if err != nil || !proto.Equal(a, ro) {
		t.Fatalf("kept %v, %v; want the runtime options", a, err)
	}
	if err := os.WriteFile(filepath.Join(dir, bundleOptions), []byte{0xff}, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadBundleOptions(dir); !errdefs.IsInvalidArgument(err) {
		t.Errorf("garbage kept: %v", err)
	}
}
