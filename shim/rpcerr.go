package shim

import (
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"google.golang.org/grpc/status"
)

// toRPCError converts err into the ttrpc status containerd's client reads,
// with err's message once and its errdefs class as the code.
//
// errgrpc.ToGRPC alone keeps an error's structure: each error after the
// first of an errors.Join, or of a "%w: %w", becomes a status detail, and
// containerd's client (errgrpc.ToNative) joins every detail back onto the
// message. A config's list of problems then reached ctr's user three times
// and "…: invalid argument" came with extra "invalid argument" lines (#13).
// The message already says everything: only the class travels beside it.
func toRPCError(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err // already a status: a call made by husk that failed
	}
	return errgrpc.ToGRPC(classified{msg: err.Error(), class: errdefs.Resolve(err)})
}

// classified is an error's message and its errdefs class, without the
// chain that made it: errgrpc finds the class (Unwrap) and no details.
type classified struct {
	msg   string
	class error
}

func (c classified) Error() string { return c.msg }
func (c classified) Unwrap() error { return c.class }

// createErr is rpcErr for a task's Create: containerd (core/runtime/v2's
// task manager) reads Unimplemented from Create as "this shim has no task
// API v3", retries the call on v2, which husk does not serve, and then
// cannot delete the task or shut the shim down: the shim stayed behind.
// A Create that husk refuses as not implemented (a build without the hook
// engine, a kernel without mount_setattr) is sent as FailedPrecondition,
// its message unchanged.
func createErr(err error) error {
	if errdefs.IsNotImplemented(err) {
		err = classified{msg: err.Error(), class: errdefs.ErrFailedPrecondition}
	}
	return rpcErr(err)
}
