package hookconf

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Duration is a Go duration string such as "100ms" or "2s". It is a string
// type checked after decoding rather than an encoding.TextUnmarshaler:
// go-toml v2 assigns TOML strings straight into string-kinded fields and
// never calls their UnmarshalText, so a validating one would silently not
// run.
type Duration string

// Parse returns d as a time.Duration. Every Duration of a loaded config
// parses.
func (d Duration) Parse() (time.Duration, error) {
	v, err := time.ParseDuration(string(d))
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (want a Go duration such as \"100ms\" or \"2s\")", string(d))
	}
	return v, nil
}

// ByteSize is an amount of memory: a whole number of bytes, KiB, MiB or GiB
// written as "65536", "512KiB", "16MiB" or "1GiB". Only binary (IEC) units
// are accepted, so that "16MB" cannot be misread as 16×10⁶ or 16×2²⁰.
type ByteSize string

// byteUnits are the suffixes ByteSize accepts, longest first.
var byteUnits = []struct {
	suffix string
	shift  uint
}{{"KiB", 10}, {"MiB", 20}, {"GiB", 30}}

// Bytes returns s in bytes. Every ByteSize of a loaded config parses.
func (s ByteSize) Bytes() (uint64, error) {
	num, shift := string(s), uint(0)
	for _, u := range byteUnits {
		if n, ok := strings.CutSuffix(num, u.suffix); ok {
			num, shift = n, u.shift
			break
		}
	}
	bad := fmt.Errorf("invalid size %q (want a whole number with an optional KiB, MiB or GiB suffix, such as \"64MiB\")", string(s))
	// ParseUint accepts only digits here; reject signs and spaces it would
	// not see anyway, and "0x" forms it would not accept with base 10.
	if num == "" || strings.TrimLeft(num, "0123456789") != "" {
		return 0, bad
	}
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil || n > (1<<(64-shift))-1 {
		return 0, bad
	}
	return n << shift, nil
}

// WasmPages checks that s is a usable Wasm memory limit and returns it in
// 64 KiB pages. Every Hook.MemoryLimit of a loaded config converts.
func (s ByteSize) WasmPages() (uint32, error) {
	b, err := s.Bytes()
	switch {
	case err != nil:
		return 0, err
	case b == 0 || b%WasmPageSize != 0:
		return 0, fmt.Errorf("%q is not a positive multiple of the 64KiB WebAssembly page", string(s))
	case b > MaxMemoryLimit:
		return 0, fmt.Errorf("%q is more than the 4GiB a WebAssembly memory can hold", string(s))
	}
	return uint32(b / WasmPageSize), nil
}

// ErrEmpty is the cause of a required key left empty.
var ErrEmpty = errors.New("must be set")

// AbsClean checks that p is an absolute path in filepath.Clean form, so
// that paths compare and join predictably everywhere they are used.
func AbsClean(p string) error {
	switch {
	case p == "":
		return errors.New("must be an absolute path, got an empty string")
	case !filepath.IsAbs(p):
		return fmt.Errorf("must be an absolute path, got %q", p)
	case filepath.Clean(p) != p:
		return fmt.Errorf("must be a clean path, got %q (want %q)", p, filepath.Clean(p))
	}
	return nil
}
