package wasmhost

import "fmt"

// maxBranchCost bounds the compile work a module's control flow can ask
// for. wazero's optimizer takes time quadratic in the blocks and branches
// of a function, and cannot be stopped inside one: one function of 40000
// empty blocks (a 120 KB module) took 51 s to compile, with a br_if in
// each 153 s, and a million nested blocks ran on for minutes, past
// SIGTERM. The cost of a function is the square of its control
// instructions (block, loop, if, else, end, br_if, br_table targets...),
// summed over the module; a unit is about 8 ns of compilation on the
// 2-core test machine, so 2^29 is about 4 s. A Go module of 1400
// functions costs 2^25, wasi-libc programs 2^19.
const maxBranchCost = 1 << 29

// errBranchCost is the error of a module whose control flow costs more
// than maxBranchCost (instrumentCode counts it as it instruments).
var errBranchCost = fmt.Errorf("its control flow would cost wazero too much to compile (over %d blocks and branches squared, husk's limit)", maxBranchCost)

// declarations skips groups local declarations (a count and a type each)
// and returns how many locals they declare.
func (r *reader) declarations(groups uint32) (n uint64) {
	for range groups { // each group takes bytes: a count past them stops at the end
		n += uint64(r.u32())
		if r.type_(); r.bad {
			break
		}
	}
	return n
}

// instruction skips one instruction and its immediates, and returns how
// many of the instructions that make or end basic blocks it counts for
// (maxBranchCost's unit). ok is false for an instruction it does not
// know.
func (r *reader) instruction() (control uint64, ok bool) {
	op := r.byte_()
	switch {
	case op == 0x02, op == 0x03, op == 0x04, op == 0x06: // block, loop, if, try
		r.blockType()
		return 1, true
	case op == 0x05, op == 0x0b, op == 0x19: // else, end, catch_all
		return 1, true
	case op == 0x07, op == 0x18: // catch, delegate
		r.leb()
		return 1, true
	case op == 0x0d, op == 0xd4, op == 0xd6: // br_if, br_on_null, br_on_non_null
		r.leb()
		return 1, true
	case op == 0x0e: // br_table
		targets := r.u32()
		for range targets {
			if r.leb(); r.bad {
				break
			}
		}
		r.leb()
		return uint64(targets) + 1, true
	case op == 0x1f: // try_table
		r.blockType()
		clauses := r.u32()
		for range clauses {
			if kind := r.byte_(); kind <= 1 {
				r.leb() // tag
			}
			if r.leb(); r.bad { // label
				break
			}
		}
		return uint64(clauses) + 1, true
	case op == 0x00, op == 0x01, op == 0x0a, op == 0x0f, op == 0x1a, op == 0x1b, op == 0xd1, op == 0xd3,
		op >= 0x45 && op <= 0xc4:
		// no immediate
	case op == 0x08, op == 0x09, op == 0x0c, op == 0x10, op == 0x12, op == 0x14, op == 0x15,
		op >= 0x20 && op <= 0x26, op == 0x3f, op == 0x40, op == 0x41, op == 0x42, op == 0xd0, op == 0xd2:
		r.leb()
	case op == 0x11, op == 0x13: // call_indirect, return_call_indirect
		r.leb()
		r.leb()
	case op == 0x1c: // select t*
		types := r.u32()
		for range types {
			if r.type_(); r.bad {
				break
			}
		}
	case op >= 0x28 && op <= 0x3e:
		r.memarg()
	case op == 0x43:
		r.skip(4)
	case op == 0x44:
		r.skip(8)
	case op == 0xfc:
		switch sub := r.u32(); {
		case sub <= 7:
		case sub == 9, sub == 11, sub == 13, sub >= 15 && sub <= 17:
			r.leb()
		case sub == 8, sub == 10, sub == 12, sub == 14:
			r.leb()
			r.leb()
		default:
			return 0, false
		}
	case op == 0xfd:
		switch sub := r.u32(); {
		case sub <= 11, sub == 92, sub == 93:
			r.memarg()
		case sub == 12, sub == 13:
			r.skip(16)
		case sub >= 21 && sub <= 34:
			r.skip(1)
		case sub >= 84 && sub <= 91:
			r.memarg()
			r.skip(1)
		}
	case op == 0xfe:
		if r.u32() == 0x03 { // atomic.fence
			r.skip(1)
		} else {
			r.memarg()
		}
	default:
		return 0, false
	}
	return 0, true
}

// reader reads the immediates of instructions; bad is set when one runs
// past the end.
type reader struct {
	b   []byte
	off int
	bad bool
	err error // a count or length that cannot fit (vector, length)
}

func (r *reader) byte_() byte {
	if r.off >= len(r.b) {
		r.bad = true
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

func (r *reader) skip(n int) {
	if r.off+n > len(r.b) {
		r.bad = true
		return
	}
	r.off += n
}

// leb skips a LEB128 number of up to 10 bytes (any width, signed or not).
func (r *reader) leb() {
	for i := 0; i < 10; i++ {
		if r.byte_()&0x80 == 0 {
			return
		}
	}
	r.bad = true
}

func (r *reader) u32() uint32 {
	v, n, ok := readU32(r.b[min(r.off, len(r.b)):])
	if !ok {
		r.bad = true
		return 0
	}
	r.off += n
	return v
}

// type_ skips a value type: one byte, or a reference type prefix and its
// heap type.
func (r *reader) type_() {
	if c := r.byte_(); c == 0x63 || c == 0x64 {
		r.leb()
	}
}

// blockType skips a block type: 0x40, a value type or a type index (all
// s33), or a reference type prefix and its heap type.
func (r *reader) blockType() {
	if r.off < len(r.b) && (r.b[r.off] == 0x63 || r.b[r.off] == 0x64) {
		r.off++
	}
	r.leb()
}

// memarg skips a memory argument: alignment (bit 6: a memory index
// follows) and offset.
func (r *reader) memarg() {
	align := r.u32()
	if align&0x40 != 0 {
		r.leb()
	}
	r.leb()
}
