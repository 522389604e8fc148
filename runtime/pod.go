package runtime

// Pod annotations set by the CRI implementations. containerd's CRI and
// CRI-O use different keys for the same facts.
const (
	annContainerType = "io.kubernetes.cri.container-type"
	annSandboxID     = "io.kubernetes.cri.sandbox-id"
	annCRIOType      = "io.kubernetes.cri-o.ContainerType"
	annCRIOSandboxID = "io.kubernetes.cri-o.SandboxID"

	typeSandbox = "sandbox"
)

// Pod tells which sandbox a container belongs to.
type Pod struct {
	// SandboxID is the id of the pod's sandbox container, or the container's
	// own id when it is not part of a pod (plain ctr, nerdctl).
	SandboxID string
	// IsSandbox is true for the pod's sandbox (pause) container itself, and
	// for a container that is its own sandbox.
	IsSandbox bool
	// CRI is true when the container came through a CRI.
	CRI bool
}

// PodOf reads a container's pod membership from its OCI annotations.
func PodOf(id string, annotations map[string]string) Pod {
	for _, keys := range [][2]string{{annContainerType, annSandboxID}, {annCRIOType, annCRIOSandboxID}} {
		typ, ok := annotations[keys[0]]
		if !ok {
			continue
		}
		if typ == typeSandbox {
			return Pod{SandboxID: id, IsSandbox: true, CRI: true}
		}
		if sb := annotations[keys[1]]; sb != "" {
			return Pod{SandboxID: sb, CRI: true}
		}
	}
	return Pod{SandboxID: id, IsSandbox: true}
}
