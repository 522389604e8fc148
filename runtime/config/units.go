package config

import "github.com/huskrt/husk/internal/hookconf"

// Duration is a Go duration string such as "100ms" or "2s", checked after
// decoding (hookconf.Duration says why).
type Duration = hookconf.Duration

// ByteSize is an amount of memory written with an optional binary unit:
// "65536", "512KiB", "16MiB" or "1GiB" (hookconf.ByteSize).
type ByteSize = hookconf.ByteSize

// absClean checks that p is an absolute path in filepath.Clean form.
func absClean(p string) error { return hookconf.AbsClean(p) }
