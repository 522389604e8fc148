//go:build huskvmmtest && !husk_vmmchild

package builtin

import (
	"context"
	"errors"
	"time"

	"github.com/huskrt/husk/runtime/virt"
)

// This file is compiled only with the huskvmmtest build tag (the nested
// harness's VMM program): it adds a control request that makes the VMM
// process call a forbidden system call.

func init() {
	debugRequests = map[string]func(machine) (string, error){opForbidden: forbiddenSyscall}
}

// CallForbiddenSyscall asks vm's VMM process to call mount(2), which its
// seccomp filter forbids. It returns the error the request ended with (the
// channel broke as the process died) or, if the process survived, what it
// said.
func CallForbiddenSyscall(ctx context.Context, v virt.VM) (string, error) {
	p, ok := v.(*vm)
	if !ok {
		return "", errors.New("not a builtin VM")
	}
	r, err := p.ctl.call(ctx, &request{Op: opForbidden}, nil, 10*time.Second)
	if err != nil {
		return "", err
	}
	return r.Text, replyErr(opForbidden, r)
}
