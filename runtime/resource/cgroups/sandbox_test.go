package cgroups

import "testing"

func TestPodPath(t *testing.T) {
	tests := map[string]string{
		"/kubepods/besteffort/pod123/abc": "/kubepods/besteffort/pod123",
		"/k8s.io/abc":                     "/k8s.io",
		"/abc":                            "",
		"":                                "",
		"kubepods-pod123.slice:cri-containerd:abc":         "/kubepods.slice/kubepods-pod123.slice",
		"kubepods-burstable-pod1.slice:cri-containerd:abc": "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice",
		"system.slice:husk:abc":                            "/system.slice",
		":husk:abc":                                        "",
		"-.slice:husk:abc":                                 "",
		"kubepods.slice:cri-containerd:":                   "",
		"bad--name.slice:cri-containerd:abc":               "",
		"notaslice:cri-containerd:abc":                     "",
		"relative/abc":                                     "",
		"/a/b/../c/":                                       "/a",
	}
	for in, want := range tests {
		if got := PodPath(in); got != want {
			t.Errorf("PodPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestReleaseShimRefusesOtherCgroups(t *testing.T) {
	if err := ReleaseShim("/kubepods/pod1", 0); err == nil {
		t.Fatal("ReleaseShim accepted a cgroup that is not a shim leaf")
	}
}
