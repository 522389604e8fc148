package wasmhost

import (
	"errors"
	"fmt"
)

// wazero's decoder allocates for a count or a length as soon as it reads
// it, before it reads what is counted: a code section declaring 2^32
// functions, a name section declaring 2^32 function names or an element
// segment of 2^32 entries, each in a module of a few bytes, made it
// allocate past the host's memory and killed the process (fatal error:
// out of memory, which no recover catches); a data segment or a name of
// 2^32 bytes cost 4 GiB for a moment. Every element of a vector takes at
// least one byte, so checkSizes refuses a module whose counts and lengths
// exceed the bytes left where they are declared, and stripNames removes
// the name section (function and local names, which husk's errors do not
// show) rather than checking its nested maps.

// Sections whose payload starts with a vector of entries.
var vectorSections = map[byte]bool{1: true, 2: true, 3: true, 4: true, 5: true, 6: true, 7: true, 9: true, 10: true, 11: true, 13: true}

const (
	sectionCustom  = 0
	sectionElement = 9
	sectionData    = 11
)

// checkSizes checks the counts and lengths of wasm, whose sections are
// framed within it (boundModule checked), against the bytes that follow
// them.
func checkSizes(wasm []byte) error {
	for off := 8; off < len(wasm); {
		id := wasm[off]
		size, n, _ := readU32(wasm[off+1:])
		start := off + 1 + n
		end := start + int(size)
		r := reader{b: wasm[start:end]}
		var err error
		switch {
		case id == sectionCustom:
			err = r.name()
		case vectorSections[id]:
			count := r.vector()
			switch id {
			case sectionImport:
				for range count {
					if err = r.name(); err == nil {
						err = r.name()
					}
					if err != nil || r.bad {
						break
					}
					r.importDesc()
				}
			case sectionExport:
				for range count {
					if err = r.name(); err != nil || r.bad {
						break
					}
					r.byte_()
					r.u32()
				}
			case sectionElement:
				for range count {
					if err = r.elementSegment(); err != nil || r.bad {
						break
					}
				}
			case sectionData:
				for range count {
					if err = r.dataSegment(); err != nil || r.bad {
						break
					}
				}
			}
		}
		if err == nil && r.err != nil {
			err = r.err
		}
		if err != nil {
			return fmt.Errorf("malformed: section %d at byte %d: %w", id, off, err)
		}
		off = end
	}
	return nil
}

// vector reads a vector's count, checking that as many entries of at least
// one byte can follow.
func (r *reader) vector() uint32 {
	count := r.u32()
	r.cutShort()
	if !r.bad && uint64(count) > uint64(len(r.b)-r.off) && r.err == nil {
		r.err = fmt.Errorf("declares %d entries in %d bytes", count, len(r.b)-r.off)
	}
	return count
}

// length reads a byte length and checks that as many bytes follow.
func (r *reader) length() uint32 {
	n := r.u32()
	r.cutShort()
	if !r.bad && uint64(n) > uint64(len(r.b)-r.off) && r.err == nil {
		r.err = fmt.Errorf("declares %d bytes where %d are left", n, len(r.b)-r.off)
	}
	return n
}

// cutShort records a count or length that runs past the end of its
// section: wazero reads on into the next section's bytes and takes what
// it finds for the count (a function section of "\x8d\x8d\x8d\x8d"
// followed by a 3 made it allocate 3 GiB).
func (r *reader) cutShort() {
	if r.bad && r.err == nil {
		r.err = errors.New("a count or length runs past the end of its section")
	}
}

// name skips a name (a length and its bytes).
func (r *reader) name() error {
	r.skip(int(r.length()))
	return r.err
}

// importDesc skips an import's description.
func (r *reader) importDesc() {
	switch r.byte_() {
	case 0x00: // function
		r.u32()
	case 0x01: // table
		r.type_()
		r.limits()
	case 0x02: // memory
		r.limits()
	case 0x03: // global
		r.type_()
		r.byte_()
	case 0x04: // tag
		r.byte_()
		r.u32()
	default:
		r.bad = true // wazero says why
	}
}

// constExpr skips a constant expression, up to its end.
func (r *reader) constExpr() {
	for !r.bad && r.off < len(r.b) {
		op := r.b[r.off]
		if _, ok := r.instruction(); !ok {
			r.bad = true
			return
		}
		if op == 0x0b {
			return
		}
	}
}

// elementSegment skips an element segment, checking its vector's count.
func (r *reader) elementSegment() error {
	flags := r.u32()
	if flags > 7 {
		r.bad = true
		return nil
	}
	if flags&2 != 0 && flags&1 == 0 { // a table index
		r.u32()
	}
	if flags&1 == 0 { // an offset
		r.constExpr()
	}
	if flags&3 != 0 { // an element kind or a reference type
		if flags&4 != 0 {
			r.type_()
		} else {
			r.byte_()
		}
	}
	count := r.vector()
	for range count {
		if r.bad || r.err != nil {
			break
		}
		if flags&4 != 0 {
			r.constExpr()
		} else {
			r.u32()
		}
	}
	return r.err
}

// dataSegment skips a data segment, checking its length.
func (r *reader) dataSegment() error {
	switch r.u32() {
	case 0:
		r.constExpr()
	case 1:
	case 2:
		r.u32()
		r.constExpr()
	default:
		r.bad = true
		return nil
	}
	r.skip(int(r.length()))
	return r.err
}

// stripNames returns wasm without its "name" custom sections, or wasm
// itself when it has none.
func stripNames(wasm []byte) []byte {
	var out []byte
	last := 0
	for off := 8; off < len(wasm); {
		size, n, _ := readU32(wasm[off+1:])
		start := off + 1 + n
		end := start + int(size)
		if wasm[off] == sectionCustom {
			r := reader{b: wasm[start:end]}
			l := r.u32()
			if !r.bad && r.off+int(l) <= len(r.b) && string(r.b[r.off:r.off+int(l)]) == "name" {
				out = append(out, wasm[last:off]...)
				last = end
			}
		}
		off = end
	}
	if out == nil {
		return wasm
	}
	return append(out, wasm[last:]...)
}
