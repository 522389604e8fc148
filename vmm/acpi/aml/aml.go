// Package aml encodes the small subset of ACPI Machine Language (ACPI 6.5,
// chapter 20) that describes husk's devices: names, scopes, devices,
// integers, strings, packages, buffers and resource templates.
//
// Every function returns the encoding of one term; terms nest by passing
// encodings as arguments. Names are the VMM's own constants, never guest
// input: an invalid name is a programming error and panics.
package aml

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// Opcodes (ACPI 6.5, 20.3).
const (
	zeroOp       = 0x00
	oneOp        = 0x01
	nameOp       = 0x08
	bytePrefix   = 0x0a
	wordPrefix   = 0x0b
	dwordPrefix  = 0x0c
	stringPrefix = 0x0d
	qwordPrefix  = 0x0e
	scopeOp      = 0x10
	bufferOp     = 0x11
	packageOp    = 0x12
	extOpPrefix  = 0x5b
	deviceOp     = 0x82 // after extOpPrefix
	rootChar     = '\\'
	dualName     = 0x2e
	multiName    = 0x2f
)

// Integer encodes v in the shortest form: ZeroOp, OneOp, or a byte, word,
// dword or qword constant.
func Integer(v uint64) []byte {
	switch {
	case v == 0:
		return []byte{zeroOp}
	case v == 1:
		return []byte{oneOp}
	case v <= 0xff:
		return []byte{bytePrefix, byte(v)}
	case v <= 0xffff:
		return binary.LittleEndian.AppendUint16([]byte{wordPrefix}, uint16(v))
	case v <= 0xffff_ffff:
		return binary.LittleEndian.AppendUint32([]byte{dwordPrefix}, uint32(v))
	default:
		return binary.LittleEndian.AppendUint64([]byte{qwordPrefix}, v)
	}
}

// String encodes an ASCII string constant. It panics on a NUL or a
// non-ASCII byte, which AML strings cannot hold.
func String(s string) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 || s[i] > 0x7f {
			panic(fmt.Sprintf("aml: string %q: byte %#x is not allowed", s, s[i]))
		}
	}
	return append(append([]byte{stringPrefix}, s...), 0)
}

// EISAID encodes EISAID("PNP0501"): a compressed EISA id, three upper-case
// letters and four hex digits, as the integer ASL makes of it. It panics on
// anything else.
func EISAID(id string) []byte {
	ok := len(id) == 7
	var v uint32
	for i := 0; ok && i < 7; i++ {
		c := id[i]
		switch {
		case i < 3 && c >= 'A' && c <= 'Z':
			v = v<<5 | uint32(c-'@')
		case i >= 3 && c >= '0' && c <= '9':
			v = v<<4 | uint32(c-'0')
		case i >= 3 && c >= 'A' && c <= 'F':
			v = v<<4 | uint32(c-'A'+10)
		default:
			ok = false
		}
	}
	if !ok {
		panic(fmt.Sprintf("aml: %q is not an EISA id", id))
	}
	// The 31 bits above are stored big-endian in the integer's bytes.
	return Integer(uint64(v>>24 | v>>8&0xff00 | v<<8&0xff_0000 | v<<24))
}

// Name encodes Name(name, value): a named object holding a data term.
func Name(name string, value []byte) []byte {
	return append(append([]byte{nameOp}, nameString(name)...), value...)
}

// Scope encodes Scope(name) { terms }.
func Scope(name string, terms ...[]byte) []byte {
	return pkg([]byte{scopeOp}, nameString(name), terms...)
}

// Device encodes Device(name) { terms }.
func Device(name string, terms ...[]byte) []byte {
	return pkg([]byte{extOpPrefix, deviceOp}, nameString(name), terms...)
}

// Package encodes Package() { elements }, at most 255 of them.
func Package(elements ...[]byte) []byte {
	if len(elements) > 0xff {
		panic(fmt.Sprintf("aml: package of %d elements, at most 255", len(elements)))
	}
	return pkg([]byte{packageOp}, []byte{byte(len(elements))}, elements...)
}

// Buffer encodes Buffer() { data } with its size as a constant.
func Buffer(data []byte) []byte {
	return pkg([]byte{bufferOp}, Integer(uint64(len(data))), data)
}

// pkg encodes op PkgLength head terms..., where PkgLength counts itself,
// head and the terms.
func pkg(op, head []byte, terms ...[]byte) []byte {
	body := append([]byte(nil), head...)
	for _, t := range terms {
		body = append(body, t...)
	}
	return append(append(op, pkgLength(len(body))...), body...)
}

// pkgLength encodes the length of a package whose contents after the
// PkgLength are n bytes (ACPI 6.5, 20.2.4): one to four bytes, the first
// holding the count of those that follow in bits 7-6.
func pkgLength(n int) []byte {
	for extra := 0; extra <= 3; extra++ {
		total := n + 1 + extra
		switch {
		case extra == 0 && total < 0x40:
			return []byte{byte(total)}
		case extra > 0 && total < 1<<(4+8*extra):
			b := []byte{byte(extra<<6) | byte(total&0xf)}
			for i := range extra {
				b = append(b, byte(total>>(4+8*i)))
			}
			return b
		}
	}
	panic(fmt.Sprintf("aml: package of %d bytes is too long", n))
}

// nameString encodes a name path: an optional root prefix, then one or
// more dot-separated segments of up to four characters ([A-Z_] then
// [A-Z0-9_]), padded with '_' to four as ASL does.
func nameString(path string) []byte {
	var b []byte
	if strings.HasPrefix(path, `\`) {
		b = append(b, rootChar)
		path = path[1:]
	}
	segs := strings.Split(path, ".")
	switch {
	case len(segs) == 2:
		b = append(b, dualName)
	case len(segs) > 2:
		b = append(b, multiName, byte(len(segs)))
	}
	for _, s := range segs {
		b = append(b, nameSeg(s)...)
	}
	return b
}

func nameSeg(s string) []byte {
	if len(s) == 0 || len(s) > 4 {
		panic(fmt.Sprintf("aml: name segment %q is not 1-4 characters", s))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c == '_' || i > 0 && c >= '0' && c <= '9') {
			panic(fmt.Sprintf("aml: name segment %q: bad character %q", s, c))
		}
	}
	return []byte(s + strings.Repeat("_", 4-len(s)))
}
