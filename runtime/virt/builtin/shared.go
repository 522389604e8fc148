package builtin

// What both sides of the control channel use: the parent (the shim) and
// the VMM process, which a build with the husk_vmmchild tag (cmd/husk-vmm)
// holds alone.
const (
	// MaxNICs is the most NICs a VM can have (agent.proto's bound).
	MaxNICs = 16
	// vsockName is the hybrid vsock's Unix socket: the parent dials
	// <Dir>/vsock.sock; the VMM created it by this relative name from
	// inside Dir, so that it resolves the same after the pivot.
	vsockName = "vsock.sock"
)
