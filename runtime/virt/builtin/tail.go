//go:build !husk_vmmchild

package builtin

import "github.com/huskrt/husk/runtime/virt/internal/vmproc"

// tail keeps the last lines of the VMM's stderr (vmproc.Tail).
type tail = vmproc.Tail

const (
	tailLines   = vmproc.TailLines
	tailLineLen = vmproc.TailLineLen
)
