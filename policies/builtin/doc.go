// Package builtin holds the tests of husk's built-in policies
// (policies/<name>/policy.c, docs/hooks.md §6): each builds its policy's
// module and asks it through husk's Wasm host (policies/internal/moduletest),
// with the cases the Go policies' own tests had. The policies are C files
// in directories of their own, where the go command does not look.
package builtin
