package runtime

import "testing"

func TestPodOf(t *testing.T) {
	tests := []struct {
		name string
		ann  map[string]string
		want Pod
	}{
		{"plain container", nil, Pod{SandboxID: "c1", IsSandbox: true}},
		{"containerd CRI sandbox", map[string]string{annContainerType: "sandbox", annSandboxID: "c1"}, Pod{SandboxID: "c1", IsSandbox: true, CRI: true}},
		{"containerd CRI container", map[string]string{annContainerType: "container", annSandboxID: "sb"}, Pod{SandboxID: "sb", CRI: true}},
		{"CRI-O sandbox", map[string]string{annCRIOType: "sandbox", annCRIOSandboxID: "c1"}, Pod{SandboxID: "c1", IsSandbox: true, CRI: true}},
		{"CRI-O container", map[string]string{annCRIOType: "container", annCRIOSandboxID: "sb"}, Pod{SandboxID: "sb", CRI: true}},
		{"container without sandbox id is its own", map[string]string{annContainerType: "container"}, Pod{SandboxID: "c1", IsSandbox: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := PodOf("c1", tt.ann); got != tt.want {
				t.Fatalf("PodOf = %+v, want %+v", got, tt.want)
			}
		})
	}
}
