package runtime

import (
	"fmt"
	"strconv"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

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

// Sandbox sizing annotations: the pod's total resources, which the CRI
// derives from its containers' limits.
const (
	annSandboxCPUPeriod = "io.kubernetes.cri.sandbox-cpu-period"
	annSandboxCPUQuota  = "io.kubernetes.cri.sandbox-cpu-quota"
	annSandboxCPUShares = "io.kubernetes.cri.sandbox-cpu-shares"
	annSandboxMemory    = "io.kubernetes.cri.sandbox-memory"
)

// SandboxResources reads the pod's sizing annotations; nil when there are
// none (or none that limit anything). A malformed value is an error naming
// the annotation.
func SandboxResources(annotations map[string]string) (*specs.LinuxResources, error) {
	num := func(key string) (int64, bool, error) {
		v, ok := annotations[key]
		if !ok || v == "" {
			return 0, false, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err == nil && n == -1 && key == annSandboxCPUQuota {
			// The cgroup's "no quota": the kubelet's for a pod with
			// exclusive CPUs (DisableCPUQuotaWithExclusiveCPUs).
			return 0, false, nil
		}
		if err != nil || n < 0 {
			return 0, false, fmt.Errorf("annotation %s=%q is not a non-negative integer: %w", key, v, errdefs.ErrInvalidArgument)
		}
		return n, n > 0, nil
	}
	var res specs.LinuxResources
	limited := false
	if n, ok, err := num(annSandboxMemory); err != nil {
		return nil, err
	} else if ok {
		res.Memory = &specs.LinuxMemory{Limit: &n}
		limited = true
	}
	cpu := &specs.LinuxCPU{}
	if n, ok, err := num(annSandboxCPUQuota); err != nil {
		return nil, err
	} else if ok {
		cpu.Quota = &n
	}
	if n, ok, err := num(annSandboxCPUPeriod); err != nil {
		return nil, err
	} else if ok {
		p := uint64(n)
		cpu.Period = &p
	}
	if n, ok, err := num(annSandboxCPUShares); err != nil {
		return nil, err
	} else if ok {
		s := uint64(n)
		cpu.Shares = &s
	}
	if cpu.Quota != nil || cpu.Shares != nil {
		res.CPU = cpu
		limited = true
	}
	if !limited {
		return nil, nil
	}
	return &res, nil
}
