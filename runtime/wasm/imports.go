package wasm

import (
	"errors"
	"fmt"
)

// An import of a core Wasm module, as read from its import section.
type wasmImport struct {
	Module, Name string
	Kind         byte // importFunc, importTable, importMemory, importGlobal, importTag
}

const (
	importFunc   = 0
	importTable  = 1
	importMemory = 2
	importGlobal = 3
	importTag    = 4

	sectionImport = 2
)

func (i wasmImport) String() string {
	kinds := [...]string{"function", "table", "memory", "global", "tag"}
	k := "import"
	if int(i.Kind) < len(kinds) {
		k = kinds[i.Kind]
	}
	return fmt.Sprintf("%s %s.%s", k, i.Module, i.Name)
}

var (
	errTruncated = errors.New("truncated")
	// errComponent: components share the magic but not the version.
	errComponent = errors.New("a Wasm component (component model), not a core module: husk runs WASI preview1 core modules")
)

// moduleImports reads the imports of a core Wasm module without validating
// the rest of it (wazero does that when it compiles). The shim runs this on
// untrusted bytes: every length is bounds-checked.
func moduleImports(b []byte) ([]wasmImport, error) {
	if len(b) < 8 || string(b[:4]) != string(magic) {
		return nil, errors.New("not a Wasm module")
	}
	switch v := b[4:8]; {
	case v[0] == 1 && v[1] == 0 && v[2] == 0 && v[3] == 0:
	case v[2] == 1 && v[3] == 0: // layer 1: a component
		return nil, errComponent
	default:
		return nil, fmt.Errorf("unsupported Wasm binary version % x", v)
	}
	r := reader{b: b, off: 8}
	for !r.done() {
		id, err := r.byte()
		if err != nil {
			return nil, err
		}
		size, err := r.u32()
		if err != nil {
			return nil, err
		}
		body, err := r.bytes(int(size))
		if err != nil {
			return nil, fmt.Errorf("section %d: %w", id, err)
		}
		if id == sectionImport {
			imps, err := parseImports(body)
			if err != nil {
				return nil, fmt.Errorf("import section: %w", err)
			}
			return imps, nil
		}
	}
	return nil, nil
}

func parseImports(b []byte) ([]wasmImport, error) {
	r := reader{b: b}
	n, err := r.u32()
	if err != nil {
		return nil, err
	}
	if int(n) > len(b) { // every import takes at least one byte
		return nil, errTruncated
	}
	imps := make([]wasmImport, 0, n)
	for i := uint32(0); i < n; i++ {
		mod, err := r.name()
		if err != nil {
			return nil, err
		}
		name, err := r.name()
		if err != nil {
			return nil, err
		}
		kind, err := r.byte()
		if err != nil {
			return nil, err
		}
		switch kind {
		case importFunc:
			_, err = r.u32() // type index
		case importTable:
			if _, err = r.byte(); err == nil { // reference type
				err = r.limits()
			}
		case importMemory:
			err = r.limits()
		case importGlobal:
			if _, err = r.byte(); err == nil { // value type
				_, err = r.byte() // mutability
			}
		case importTag:
			if _, err = r.byte(); err == nil { // attribute
				_, err = r.u32()
			}
		default:
			err = fmt.Errorf("import %d: unknown kind 0x%x", i, kind)
		}
		if err != nil {
			return nil, err
		}
		imps = append(imps, wasmImport{Module: mod, Name: name, Kind: kind})
	}
	return imps, nil
}

// reader decodes the Wasm binary format's primitives, bounds-checked.
type reader struct {
	b   []byte
	off int
}

func (r *reader) done() bool { return r.off >= len(r.b) }

func (r *reader) byte() (byte, error) {
	if r.off >= len(r.b) {
		return 0, errTruncated
	}
	c := r.b[r.off]
	r.off++
	return c, nil
}

func (r *reader) bytes(n int) ([]byte, error) {
	if n < 0 || n > len(r.b)-r.off {
		return nil, errTruncated
	}
	s := r.b[r.off : r.off+n]
	r.off += n
	return s, nil
}

// uleb reads an unsigned LEB128 of at most bits bits.
func (r *reader) uleb(bits uint) (uint64, error) {
	var v uint64
	for shift := uint(0); ; shift += 7 {
		if shift >= bits {
			return 0, errors.New("LEB128 too long")
		}
		c, err := r.byte()
		if err != nil {
			return 0, err
		}
		v |= uint64(c&0x7f) << shift
		if c&0x80 == 0 {
			return v, nil
		}
	}
}

func (r *reader) u32() (uint32, error) {
	v, err := r.uleb(35)
	if v > 1<<32-1 {
		return 0, errors.New("u32 out of range")
	}
	return uint32(v), err
}

func (r *reader) name() (string, error) {
	n, err := r.u32()
	if err != nil {
		return "", err
	}
	b, err := r.bytes(int(n))
	return string(b), err
}

// limits skips a table or memory type's limits: a flag byte (bit 0: has a
// maximum; bit 2: 64-bit), then the minimum and maybe the maximum.
func (r *reader) limits() error {
	flag, err := r.byte()
	if err != nil {
		return err
	}
	if flag > 7 {
		return fmt.Errorf("bad limits flag 0x%x", flag)
	}
	count := 1 + int(flag&1)
	for i := 0; i < count; i++ {
		if _, err := r.uleb(70); err != nil {
			return err
		}
	}
	return nil
}
