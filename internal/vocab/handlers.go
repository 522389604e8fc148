package vocab

import "slices"

// The handler names: how husk runs a container. The config file's
// default_handler, the io.husk.handler annotation and each handler's Name
// use them.
const (
	Linux = "linux" // Linux containers through libcontainer
	Wasm  = "wasm"  // WebAssembly modules run by wazero
	Virt  = "virt"  // containers in a lightweight VM
)

// handlers is every handler husk knows, built into a given binary or not.
var handlers = [...]string{Linux, Wasm, Virt}

// Handlers returns every handler's name.
func Handlers() []string { return slices.Clone(handlers[:]) }

// IsHandler reports whether name is a handler husk knows.
func IsHandler(name string) bool { return slices.Contains(handlers[:], name) }
