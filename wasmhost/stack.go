package wasmhost

import (
	"errors"
	"fmt"
)

// MaxStackBytes bounds the call stack of one call into a module, in bytes
// of husk's estimate of its frames (frameCost). wazero keeps a module's
// call stack in a Go slice that it doubles as the stack deepens, up to a
// fixed ceiling of 50 MB, outside the memory limit: a module recursing
// without end made the host hold 165 MiB for 0.7–1.1 s before wazero
// trapped. husk counts the frames itself (instrumentStack), and a call
// whose frames would pass this bound traps with "call stack exhausted".
// The estimate is meant to be an upper bound of wazero's frames (it was
// 6–12 times larger for the recursions of the tests), so the stack wazero
// allocates stays under twice this (its doubling) plus the copy it makes
// as it grows: the recursion above now costs 2.2 MiB and 7 ms. A Go
// module's frames are estimated at 4.5 KiB (median; 93 KiB at most), so
// a Go call chain may be about 1800 frames deep.
const MaxStackBytes = 8 << 20

// The frame cost estimate: wazero's frame of a function holds its return
// address and saved registers, a spill slot for values live across a
// call (its parameters and locals, and the operand stack: at most one
// value per instruction before the call) and the outgoing arguments and
// results of the calls it makes. Each value counts as 16 bytes, a v128's
// size; the fixed part 64.
const (
	frameBase  = 64
	valueBytes = 16
)

// stackExport is the name under which an instrumented module exports its
// frame counter, a mutable i32 global: husk sets it to 0 before each call
// into the module and reads it when a call traps.
const stackExport = "husk.stack"

// errStackExhausted is the cause of a trap from a call whose frames passed
// MaxStackBytes.
var errStackExhausted = errors.New("call stack exhausted")

// Section ids (WebAssembly core spec, 5.5.2) used here and not elsewhere.
const (
	sectionImport   = 2
	sectionFunction = 3
	sectionGlobal   = 6
	sectionExport   = 7
)

// sectionRank orders sections as the binary format requires (the tag
// section, from the exception-handling proposal, between memory and
// global; data count before code).
var sectionRank = map[byte]int{1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 13: 6, 6: 7, 7: 8, 8: 9, 9: 10, 12: 11, 10: 12, 11: 13}

type section struct {
	id         byte
	off        int // where the section starts: its id
	start, end int // the payload's extent in the module
}

// instrumentStack returns wasm with a frame counter: a new mutable global,
// exported as stackExport; a new local in every function; at the start of
// every function its frame's cost is added to the counter, and the call
// traps (unreachable) when the counter passes MaxStackBytes; around every
// call (call, call_indirect) the caller saves the counter in its local and
// restores it once the callee returns. No index of the module's changes
// (the global, the local and the export come after the existing ones), so
// nothing else is rewritten. A module husk cannot instrument (an
// instruction or a type from a proposal it does not know) is refused;
// a malformed one is returned as it is, for wazero to report.
func instrumentStack(wasm []byte) ([]byte, error) {
	if len(wasm) < 8 || string(wasm[:4]) != "\x00asm" {
		return wasm, nil
	}
	var sections []section
	for off := 8; off < len(wasm); {
		size, n, ok := readU32(wasm[off+1:])
		start := off + 1 + n
		end := start + int(size)
		if !ok || end > len(wasm) || end < start {
			return wasm, nil
		}
		sections = append(sections, section{wasm[off], off, start, end})
		off = end
	}
	find := func(id byte) []byte {
		for _, s := range sections {
			if s.id == id {
				return wasm[s.start:s.end]
			}
		}
		return nil
	}

	types, err := funcTypes(find(sectionType))
	if err != nil {
		return nil, err
	}
	funcs, globals, ok := imports(find(sectionImport))
	if !ok {
		return wasm, nil
	}
	if p := find(sectionFunction); p != nil {
		r := reader{b: p}
		for range r.u32() {
			if funcs = append(funcs, r.u32()); r.bad {
				break
			}
		}
		if r.bad {
			return wasm, nil
		}
	}
	var definedGlobals uint32
	if p := find(sectionGlobal); p != nil {
		r := reader{b: p}
		if definedGlobals = r.u32(); r.bad {
			return wasm, nil
		}
	}
	counter := globals + definedGlobals // the new global's index
	for _, f := range funcs {
		if int(f) >= len(types) {
			return wasm, nil
		}
	}

	code := find(sectionCode)
	if code == nil {
		return wasm, nil // nothing to instrument: no function can recurse
	}
	body, err := instrumentCode(code, types, funcs, counter)
	switch {
	case err != nil:
		return nil, err
	case body == nil:
		return wasm, nil // malformed: wazero says why
	}

	// The counter: (global (mut i32) (i32.const 0)), exported.
	global := appendU32(nil, definedGlobals+1)
	if g := find(sectionGlobal); g != nil {
		_, n, _ := readU32(g)
		global = append(global, g[n:]...)
	}
	global = append(global, 0x7f, 0x01, 0x41, 0x00, 0x0b)
	export := []byte{}
	count := uint32(0)
	if e := find(sectionExport); e != nil {
		c, n, ok := readU32(e)
		if !ok {
			return wasm, nil
		}
		count, export = c, e[n:]
		r := reader{b: export}
		for range count {
			name := r.u32()
			if r.bad {
				break
			}
			if !r.bad && r.off+int(name) <= len(r.b) && string(r.b[r.off:r.off+int(name)]) == stackExport {
				return nil, fmt.Errorf("exports %q, a name husk gives its call-stack counter", stackExport)
			}
			r.skip(int(name))
			r.byte_() // kind
			r.u32()   // index
		}
	}
	export = append(appendU32(nil, count+1), export...)
	export = appendU32(export, uint32(len(stackExport)))
	export = append(export, stackExport...)
	export = append(export, 0x03) // a global
	export = appendU32(export, counter)

	replace := map[byte][]byte{sectionGlobal: global, sectionExport: export, sectionCode: body}
	out := make([]byte, 0, len(wasm)+len(body)-len(code)+64)
	out = append(out, wasm[:8]...)
	emit := func(id byte, payload []byte) {
		out = append(out, id)
		out = appendU32(out, uint32(len(payload)))
		out = append(out, payload...)
	}
	for _, s := range sections {
		// Sections the module lacks go before the first that ranks after
		// them.
		for _, id := range []byte{sectionGlobal, sectionExport} {
			if p, ok := replace[id]; ok && s.id != 0 && sectionRank[s.id] > sectionRank[id] {
				emit(id, p)
				delete(replace, id)
			}
		}
		if p, ok := replace[s.id]; ok && s.id != 0 {
			emit(s.id, p)
			delete(replace, s.id)
			continue
		}
		out = append(out, wasm[s.off:s.end]...)
	}
	return out, nil
}

// funcType is the shape of a function type: how many parameters and
// results.
type funcShape struct{ params, results uint32 }

// funcTypes reads the type section p.
func funcTypes(p []byte) ([]funcShape, error) {
	r := reader{b: p}
	var types []funcShape
	for i := range r.u32() {
		if r.bad {
			break
		}
		if r.byte_() != funcType {
			return nil, fmt.Errorf("type %d is not a function type: husk cannot bound the call stack of modules of this proposal", i)
		}
		var t funcShape
		for _, n := range []*uint32{&t.params, &t.results} {
			*n = r.u32()
			for range *n {
				if r.type_(); r.bad {
					break
				}
			}
		}
		types = append(types, t)
	}
	return types, nil
}

// imports reads the import section p: the type of each imported function,
// and how many globals are imported.
func imports(p []byte) (funcs []uint32, globals uint32, ok bool) {
	if p == nil {
		return nil, 0, true
	}
	r := reader{b: p}
	for range r.u32() {
		for range 2 { // module and name
			r.skip(int(r.u32()))
		}
		switch r.byte_() {
		case 0x00: // function
			funcs = append(funcs, r.u32())
		case 0x01: // table
			r.type_()
			r.limits()
		case 0x02: // memory
			r.limits()
		case 0x03: // global
			r.type_()
			r.byte_()
			globals++
		case 0x04: // tag
			r.byte_()
			r.u32()
		default:
			return nil, 0, false
		}
		if r.bad {
			return nil, 0, false
		}
	}
	return funcs, globals, !r.bad
}

// limits skips table or memory limits: a flag, the minimum and, with flag
// bit 0, a maximum (64-bit and shared memories set other bits).
func (r *reader) limits() {
	flag := r.byte_()
	r.leb()
	if flag&1 != 0 {
		r.leb()
	}
}

// instrumentCode returns the code section p instrumented as
// instrumentStack says. funcs holds the type of every function, imported
// ones first; counter is the index of the counter global. It returns nil
// for a section cut short.
func instrumentCode(p []byte, types []funcShape, funcs []uint32, counter uint32) ([]byte, error) {
	count, n, ok := readU32(p)
	imported := len(funcs) - int(count)
	if !ok || imported < 0 {
		return nil, nil
	}
	p = p[n:]
	out := appendU32(make([]byte, 0, len(p)+len(p)/4), count)
	var body, code []byte
	var branchCost uint64
	for i := range int(count) {
		size, n, ok := readU32(p)
		if !ok || int(size) > len(p)-n {
			return nil, nil
		}
		b := p[n : n+int(size)]
		p = p[n+int(size):]
		f := function{types: types, funcs: funcs, counter: counter, typ: types[funcs[imported+i]]}
		var err error
		var control uint64
		if body, code, control, err = f.instrument(body[:0], code[:0], b); err != nil {
			return nil, fmt.Errorf("function %d: %w", imported+i, err)
		}
		if body == nil {
			return nil, nil
		}
		if branchCost += control * control; branchCost > maxBranchCost {
			return nil, errBranchCost
		}
		out = appendU32(out, uint32(len(body)))
		out = append(out, body...)
	}
	return out, nil
}

// function is what instrumenting one function body needs.
type function struct {
	types   []funcShape
	funcs   []uint32 // the type of every function
	counter uint32   // the counter global
	typ     funcShape
}

// instrument appends the body b, instrumented, to out, and returns it,
// code (its instructions' buffer, kept for the next body) and how many of
// its instructions make or end basic blocks (maxBranchCost). It returns
// nil out for a body cut short.
func (f *function) instrument(out, code, b []byte) (_, _ []byte, control uint64, _ error) {
	r := reader{b: b}
	groups := r.u32()
	groupsStart := r.off
	locals := r.declarations(groups)
	groupsEnd := r.off
	if r.bad {
		return nil, code, 0, nil
	}
	saved := f.typ.params + uint32(locals) // the new local: the counter before a call
	values := uint64(f.typ.params) + locals + 1
	copied := r.off // instructions before it are in code
	for r.off < len(r.b) {
		start := r.off
		op := r.b[start]
		c, ok := r.instruction()
		if !ok || r.bad {
			if r.bad {
				return nil, code, 0, nil
			}
			return nil, code, 0, fmt.Errorf("holds an instruction husk cannot bound the call stack of (opcode %#x)", op)
		}
		values++
		control += c
		switch op {
		case 0x10, 0x11: // call, call_indirect
			idx, _, _ := readU32(r.b[start+1:])
			var callee funcShape
			switch {
			case op == 0x10 && int(idx) < len(f.funcs) && int(f.funcs[idx]) < len(f.types):
				callee = f.types[f.funcs[idx]]
			case op == 0x11 && int(idx) < len(f.types):
				callee = f.types[idx]
			default:
				return nil, code, 0, nil // wazero reports the index
			}
			values += uint64(callee.params) + uint64(callee.results)
			code = append(code, r.b[copied:start]...)
			code = append(code, 0x23) // global.get counter
			code = appendU32(code, f.counter)
			code = append(code, 0x21) // local.set saved
			code = appendU32(code, saved)
			code = append(code, r.b[start:r.off]...)
			code = append(code, 0x20) // local.get saved
			code = appendU32(code, saved)
			code = append(code, 0x24) // global.set counter
			code = appendU32(code, f.counter)
			copied = r.off
		case 0x12, 0x13, 0x14, 0x15: // return_call, return_call_indirect, call_ref, return_call_ref
			return nil, code, 0, fmt.Errorf("holds an instruction husk cannot bound the call stack of (opcode %#x)", op)
		}
	}
	code = append(code, r.b[copied:]...)
	cost := min(frameBase+valueBytes*values, MaxStackBytes+1)

	out = appendU32(out, groups+1)
	out = append(out, b[groupsStart:groupsEnd]...)
	out = append(out, 0x01, 0x7f) // one i32: saved
	// counter += cost; if counter > MaxStackBytes { unreachable }
	out = append(out, 0x23)
	out = appendU32(out, f.counter)
	out = append(out, 0x41)
	out = appendS32(out, int32(cost))
	out = append(out, 0x6a, 0x24) // i32.add, global.set
	out = appendU32(out, f.counter)
	out = append(out, 0x23)
	out = appendU32(out, f.counter)
	out = append(out, 0x41)
	out = appendS32(out, MaxStackBytes)
	out = append(out, 0x4b, 0x04, 0x40, 0x00, 0x0b) // i32.gt_u, if, unreachable, end
	return append(out, code...), code, control, nil
}

// appendS32 appends v as signed LEB128.
func appendS32(b []byte, v int32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}
