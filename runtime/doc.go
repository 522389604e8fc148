// Package runtime is the shim's core between containerd's task API (package
// shim) and the handlers (runtime/linux, runtime/wasm, runtime/virt, which
// implement the contract of runtime/handler and know nothing of
// containerd's API).
//
// Its Manager keeps the sandboxes (pods) one shim serves: it chooses each
// sandbox's handler (the config's default_handler, the io.husk.handler
// annotation, crun's Wasm annotations) and each container's within it
// (select.go), opens the sandbox's hook engine and asks the hooks at every
// step the runtime takes itself (sandbox.create; container.create with its
// mounts and cgroups; container.start, process.exec, container.update,
// container.delete, sandbox.delete: hooks.go), while a handler asks at the
// steps it takes (container.rootfs, sandbox.vm, sandbox.network) through
// the Policy it is handed. It records each sandbox's containers (runtime/persist)
// before creating them, so that the delete command can clean up after a
// crashed shim, and sets up a CRI pod's cgroup.
//
// A Task is one container's lifecycle in explicit states (state.go): every
// operation is checked against the state before the handler is called, and
// process exits and OOM kills are turned into the events the shim
// publishes, in containerd's order.
package runtime
