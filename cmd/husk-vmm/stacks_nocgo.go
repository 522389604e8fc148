//go:build !cgo

package main

// threadStackKiB is 0 without cgo: Go allocates its threads' stacks itself.
const threadStackKiB = 0
