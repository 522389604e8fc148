package wasmhost

import "fmt"

// MaxTableEntries bounds the entries of a module's tables, all tables
// together. wazero keeps 8 bytes of host memory per entry and accepts
// tables of up to 2^32 entries, declared (allocated at instantiation) or
// reached with table.grow, none of which counts against the memory limit:
// one table.grow cost 515 MiB and 2 s. 2^20 entries are 8 MiB; a Go
// module declares about 5500, C and Rust ones a few dozen.
const MaxTableEntries = 1 << 20

// Wasm binary format constants (WebAssembly core spec, 5.5).
const (
	sectionTable = 4
	refFunc      = 0x70
	refExtern    = 0x6f
	limitsMin    = 0x00 // min
	limitsMinMax = 0x01 // min, max
)

// sectionLimits bound how many definitions of each kind a module may have.
// wazero allocates host memory per definition, for every instance
// (globals, tables, functions, segments), and takes time per definition
// to decode them, none of which the memory limit or a deadline covers: a
// 15 MB module of three million globals took 4.6 s and 536 MiB to load,
// one of four million empty tables 4.4 s and 610 MiB. The bounds are far
// above what compilers emit (a Go module: 15 types, 14 imports, 1405
// functions, 1 table, 8 globals, 1 element and 24000 data segments).
var sectionLimits = map[byte]struct {
	name string
	max  uint32
}{
	1:  {"types", 1 << 16},
	2:  {"imports", 1 << 12},
	3:  {"functions", 1 << 17},
	4:  {"tables", 64},
	5:  {"memories", 1},
	6:  {"globals", 1 << 14},
	7:  {"exports", 1 << 16},
	9:  {"element segments", 1 << 16},
	11: {"data segments", 1 << 17},
	13: {"tags", 1 << 12},
}

// boundModule refuses a module with more definitions of a kind than
// sectionLimits allows, before wazero decodes it, and returns it with its
// tables bounded (limitTables).
func boundModule(wasm []byte) ([]byte, error) {
	if len(wasm) < 8 || string(wasm[:4]) != "\x00asm" {
		return wasm, nil // wazero says why
	}
	for off := 8; off < len(wasm); {
		id := wasm[off]
		size, n, ok := readU32(wasm[off+1:])
		start := off + 1 + n
		end := start + int(size)
		if !ok || end > len(wasm) || end < start {
			// wazero decodes a section before it finds it cut short, and
			// allocates for the counts it declares: a 26-byte module
			// declaring a type of 2^32 parameters in a section running
			// past the end made it allocate 32 GiB, killing the process.
			return nil, fmt.Errorf("malformed: section %d at byte %d runs past the end of the module", id, off)
		}
		if limit, ok := sectionLimits[id]; ok {
			if count, _, ok := readU32(wasm[start:end]); ok && count > limit.max {
				return nil, fmt.Errorf("declares %d %s, over husk's limit of %d", count, limit.name, limit.max)
			}
		}
		if id == sectionType {
			if err := checkTypes(wasm[start:end]); err != nil {
				return nil, err
			}
		}
		if id == sectionCode {
			if err := checkLocals(wasm[start:end]); err != nil {
				return nil, err
			}
		}
		off = end
	}
	if err := checkSizes(wasm); err != nil {
		return nil, err
	}
	return limitTables(stripNames(wasm))
}

// maxParams bounds the parameters, and the results, of a function type,
// as the WebAssembly JS API's implementation limits do (1000 each):
// wazero took minutes to load a 3 MB module declaring a type of three
// million parameters.
const (
	maxParams   = 1000
	sectionType = 1
	funcType    = 0x60
)

// checkTypes checks the function types of the type section p. Types of
// other forms (from proposals wazero may not accept) are left to wazero.
func checkTypes(p []byte) error {
	r := reader{b: p}
	count := r.u32()
	for i := range count {
		if r.bad || r.byte_() != funcType {
			return nil
		}
		for _, what := range []string{"parameters", "results"} {
			n := r.u32()
			if n > maxParams {
				return fmt.Errorf("type %d has %d %s, over husk's limit of %d", i, n, what, maxParams)
			}
			for range n {
				r.type_()
			}
		}
	}
	return nil
}

// Bounds on the locals functions declare. wazero accepts 2^32 locals in
// a function and compiles each: one function of 50 million locals, in a
// module of 122 bytes, took 5.8 s and 1.3 GiB to load. Compilers declare
// dozens (a Go module: 17 at most, 6000 in all; wasi-libc's largest: 811).
const (
	maxFunctionLocals = 1 << 14
	maxModuleLocals   = 1 << 20
	sectionCode       = 10
)

// checkLocals checks the local declarations of the code section p.
func checkLocals(p []byte) error {
	count, n, ok := readU32(p)
	if !ok {
		return nil
	}
	p = p[n:]
	var total uint64
	for i := range count {
		size, n, ok := readU32(p)
		if !ok || int(size) > len(p)-n {
			return nil // wazero reports it
		}
		body := p[n : n+int(size)]
		p = p[n+int(size):]
		groups, n, ok := readU32(body)
		if !ok {
			return nil
		}
		body = body[n:]
		var locals uint64
		for range groups {
			num, n, ok := readU32(body)
			if !ok || n >= len(body) {
				return nil
			}
			body = body[n+1:] // the count and the type (a single byte for the types that need no more)
			locals += uint64(num)
			if locals > maxFunctionLocals {
				return fmt.Errorf("function %d of its code declares over %d locals, husk's limit", i, maxFunctionLocals)
			}
		}
		if total += locals; total > maxModuleLocals {
			return fmt.Errorf("declares over %d locals in all, husk's limit", maxModuleLocals)
		}
	}
	return nil
}

// limitTables returns wasm with every table bounded: a module whose tables
// declare more than MaxTableEntries initial entries in all is refused, and
// a table without a maximum, or with a larger one than its share, gets
// its share as maximum (its initial size plus an equal part of what the
// initial sizes leave of MaxTableEntries), so that table.grow past it
// fails (returns -1) as the spec says it may. Only the table section is
// rewritten, and only when a maximum changes; wasm is returned as is
// otherwise. Structure errors are left for wazero to report.
func limitTables(wasm []byte) ([]byte, error) {
	if len(wasm) < 8 || string(wasm[:4]) != "\x00asm" {
		return wasm, nil // wazero says why
	}
	for off := 8; off < len(wasm); {
		id := wasm[off]
		size, n, ok := readU32(wasm[off+1:])
		start := off + 1 + n
		end := start + int(size)
		if !ok || end > len(wasm) || end < start {
			return wasm, nil
		}
		if id != sectionTable {
			off = end
			continue
		}
		payload, err := boundTables(wasm[start:end])
		if err != nil || payload == nil {
			return wasm, err
		}
		out := make([]byte, 0, len(wasm)+len(payload)-int(size))
		out = append(out, wasm[:off]...)
		out = append(out, sectionTable)
		out = appendU32(out, uint32(len(payload)))
		out = append(out, payload...)
		return append(out, wasm[end:]...), nil
	}
	return wasm, nil
}

// table is a table type as the binary format writes it.
type table struct {
	ref      byte
	min, max uint32
	hasMax   bool
}

// boundTables returns the table section's payload p with bounded maxima,
// or nil when every table already has one within bounds.
func boundTables(p []byte) ([]byte, error) {
	count, n, ok := readU32(p)
	if !ok || count > MaxTableEntries {
		return nil, nil
	}
	p = p[n:]
	tables := make([]table, 0, count)
	var sumMin uint64
	for range count {
		if len(p) < 2 {
			return nil, nil
		}
		t := table{ref: p[0]}
		if t.ref != refFunc && t.ref != refExtern {
			// Tables with initializers (0x40) or typed references come
			// with proposals no toolchain emits for hooks.
			return nil, fmt.Errorf("declares a table of type %#x: husk accepts funcref and externref tables", t.ref)
		}
		flag := p[1]
		p = p[2:]
		if t.min, n, ok = readU32(p); !ok {
			return nil, nil
		}
		p = p[n:]
		switch flag {
		case limitsMin:
		case limitsMinMax:
			if t.max, n, ok = readU32(p); !ok {
				return nil, nil
			}
			p = p[n:]
			t.hasMax = true
		default:
			return nil, nil
		}
		sumMin += uint64(t.min)
		tables = append(tables, t)
	}
	if len(p) != 0 {
		return nil, nil // wazero reports the section's size mismatch
	}
	if sumMin > MaxTableEntries {
		return nil, fmt.Errorf("declares tables of %d entries, over husk's limit of %d in all (8 bytes of host memory each)", sumMin, MaxTableEntries)
	}
	share := (MaxTableEntries - uint32(sumMin)) / max(uint32(len(tables)), 1)
	changed := false
	for i, t := range tables {
		if bound := t.min + share; !t.hasMax || t.max > bound {
			tables[i].max, tables[i].hasMax, changed = bound, true, true
		}
	}
	if !changed {
		return nil, nil
	}
	out := appendU32(nil, uint32(len(tables)))
	for _, t := range tables {
		out = append(out, t.ref, limitsMinMax)
		out = appendU32(out, t.min)
		out = appendU32(out, t.max)
	}
	return out, nil
}

// readU32 decodes an unsigned LEB128 of at most 5 bytes at the start of b.
func readU32(b []byte) (v uint32, n int, ok bool) {
	var shift uint
	for n < len(b) && n < 5 {
		c := b[n]
		n++
		v |= uint32(c&0x7f) << shift
		if c&0x80 == 0 {
			return v, n, true
		}
		shift += 7
	}
	return 0, n, false
}

// appendU32 appends v as unsigned LEB128.
func appendU32(b []byte, v uint32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}
