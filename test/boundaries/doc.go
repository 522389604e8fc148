// Package boundaries holds the test that keeps husk's import arrows
// pointing one way (docs/design.md's layout table): the libraries at the
// bottom (vmm, wasmhost) import nothing of husk's, the hook engine knows no
// handler, the handlers know no shim, and the guest agent links none of the
// host's policy, Wasm or VMM code. It also holds what the Makefile must
// keep true of the tree: the build tags that keep packages out of the shim,
// and every fuzz target in make fuzz. It has no code of its own.
package boundaries
