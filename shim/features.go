package shim

import (
	"fmt"
	"io"
	"slices"

	"github.com/containerd/containerd/api/types"
	"github.com/containerd/containerd/api/types/runc/options"
	// Registers the features document's type with typeurl (as containerd
	// does on its side), which marshals it into the info answer.
	_ "github.com/containerd/containerd/v2/core/runtime"
	"github.com/containerd/errdefs"
	"github.com/containerd/typeurl/v2"
	"github.com/opencontainers/runtime-spec/specs-go/features"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/huskrt/husk/runtime/config"
	"github.com/huskrt/husk/runtime/linux"
)

// AnnotationHandler is the features annotation that names the handler the
// document describes: the default handler of the configuration the runtime
// options given to -info select.
const AnnotationHandler = "io.husk.handler"

// maxInfoOptions bounds what -info reads from its stdin (containerd's
// marshalled runtime options; a ConfigBody is a TOML table).
const maxInfoOptions = 1 << 20

// readInfoOptions reads the runtime options containerd gives `-info` on its
// stdin (a marshalled Any; nothing when the runtime has no options).
func readInfoOptions(r io.Reader) (*anypb.Any, error) {
	if r == nil {
		return nil, nil
	}
	data, err := io.ReadAll(io.LimitReader(r, maxInfoOptions+1))
	if err != nil {
		return nil, fmt.Errorf("reading runtime options: %w", err)
	}
	switch {
	case len(data) == 0:
		return nil, nil
	case len(data) > maxInfoOptions:
		return nil, fmt.Errorf("runtime options of more than %d bytes: %w", maxInfoOptions, errdefs.ErrInvalidArgument)
	}
	var a anypb.Any
	if err := proto.Unmarshal(data, &a); err != nil {
		return nil, fmt.Errorf("runtime options: %w: %w", err, errdefs.ErrInvalidArgument)
	}
	return &a, nil
}

// runtimeInfo is the info answer for the runtime entry whose options are
// opts: the features document of the handler its configuration runs pods
// with by default (Manager.Info).
func runtimeInfo(opts *anypb.Any) (*types.RuntimeInfo, error) {
	cfg, _, err := configFromOptions(opts)
	if err != nil {
		return nil, err
	}
	feat, err := handlerFeatures(cfg.Runtime.DefaultHandler)
	if err != nil {
		return nil, err
	}
	if !runcOptionsFit(opts) {
		dropUserNamespaces(feat)
	}
	fa, err := typeurl.MarshalAnyToProto(feat)
	if err != nil {
		return nil, fmt.Errorf("marshalling features: %w", err)
	}
	return &types.RuntimeInfo{Options: opts, Features: fa}, nil
}

// runcOptionsFit reports whether containerd's CRI can start a
// user-namespaced container on a runtime entry with options opts: it sets
// the owner of the container's stdio (IoUid, IoGid) in runc's options type,
// which it makes from the entry's options, and fails the start ("can't
// unmarshal type runtimeoptions.v1.Options") when those are of another type,
// as those of a husk entry with an options table (ConfigPath, or the
// configuration inline) are. An entry without options, or with runc's, fits.
func runcOptionsFit(opts *anypb.Any) bool {
	if opts == nil || opts.GetTypeUrl() == "" {
		return true
	}
	v, err := typeurl.UnmarshalAny(opts)
	if err != nil {
		return false
	}
	_, ok := v.(*options.Options)
	return ok
}

// dropUserNamespaces takes the user namespace out of f: the CRI then tells
// kubelet that the entry cannot run pods with hostUsers: false (it needs
// both the user namespace and idmapped mounts; idmapped mounts stay, which
// containerd checks for a container that asks for them whatever its
// runtime entry).
func dropUserNamespaces(f *features.Features) {
	if f.Linux != nil {
		f.Linux.Namespaces = slices.DeleteFunc(f.Linux.Namespaces, func(ns string) bool { return ns == "user" })
	}
}

// handlerFeatures returns the OCI features document of handler: only what
// that handler honours (docs/limitations.md says per handler).
func handlerFeatures(handler config.HandlerName) (*features.Features, error) {
	var f *features.Features
	switch handler {
	case config.HandlerLinux:
		f = linux.Features()
	case config.HandlerWasm:
		f = wasmFeatures()
	case config.HandlerVirt:
		f = virtFeatures()
	default:
		return nil, fmt.Errorf("handler %q: %w", handler, errdefs.ErrNotImplemented)
	}
	if f.Annotations == nil {
		f.Annotations = map[string]string{}
	}
	f.Annotations[AnnotationHandler] = string(handler)
	// Container annotations that choose how husk runs a container (its
	// handler, its shim group), whatever the handler.
	f.PotentiallyUnsafeConfigAnnotations = append(f.PotentiallyUnsafeConfigAnnotations,
		"io.husk.", "run.oci.handler", "module.wasm.image/variant")
	return f, nil
}

// wasmFeatures is the Wasm handler's document: the Linux handler's. A Wasm
// container is a Linux container (libcontainer sets up its namespaces,
// mounts, cgroups, seccomp filter and hooks) whose process is husk's Wasm
// runner, and native containers of a Wasm pod are the Linux handler's;
// a Wasm container runs in a pod's user namespace too
// (test/cri TestWasmInUserNamespacedPod).
func wasmFeatures() *features.Features {
	return linux.Features()
}

// virtFeatures is the VM handler's document. A VM container runs under
// the guest's agent, with the same libcontainer, in the guest's kernel:
//
//   - host volumes reach the guest as copies (runtime/virt/volume.go), not as
//     the host's tree of mounts, with nothing mounted beneath them: rro is
//     honoured (a read-only copy, resynced from the host: TestVirtPodRecursiveReadOnlyMount),
//     the other recursive mount attributes and idmapped mounts are not
//     reported, nor user namespaces (not tested in a guest yet);
//   - OCI hooks are host programs, which the handler refuses: no hooks;
//   - the guest runs cgroup v2 alone, driven by cgroupfs (no systemd);
//   - the guest has no AppArmor or SELinux policy, nor Intel RDT, and the
//     host's network devices cannot move into it;
//   - a container's network namespace is the VM's, which its pod shares.
func virtFeatures() *features.Features {
	l := linux.Features()
	t, f := true, false
	// rro is the guest's to honour (its kernel, not the host's), on a copy.
	mountOptions := append(slices.DeleteFunc(slices.Clone(l.MountOptions), func(o string) bool {
		return slices.Contains(linux.RecursiveAttrs(), o)
	}), "rro")
	return &features.Features{
		OCIVersionMin: l.OCIVersionMin,
		OCIVersionMax: l.OCIVersionMax,
		Hooks:         []string{},
		MountOptions:  mountOptions,
		Linux: &features.Linux{
			Namespaces:   []string{"cgroup", "ipc", "mount", "network", "pid", "uts"},
			Capabilities: l.Linux.Capabilities,
			Cgroup:       &features.Cgroup{V1: &f, V2: &t, Systemd: &f, SystemdUser: &f, Rdma: &f},
			// The agent is built as the shim is, with libcontainer's
			// seccomp (Makefile's BUILDTAGS).
			Seccomp:         l.Linux.Seccomp,
			Apparmor:        &features.Apparmor{Enabled: &f},
			Selinux:         &features.Selinux{Enabled: &f},
			IntelRdt:        &features.IntelRdt{Enabled: &f},
			MountExtensions: &features.MountExtensions{IDMap: &features.IDMap{Enabled: &f}},
			NetDevices:      &features.NetDevices{Enabled: &f},
		},
		Annotations: map[string]string{},
	}
}
