package wasmhost

import "unicode/utf8"

// The structural index of a JSON text (ABI v1, husk.json_index): for each
// byte offset i, a little-endian uint32 that is 0 unless a JSON value
// (string, number, literal, object or array; member names included) starts
// at i, in which case it is the offset just past the value's end, with
// IndexDecode set when the value is a string whose bytes are not its
// content as they stand (escapes, control characters, invalid UTF-8).
//
// With it a guest skips any value in O(1) instead of scanning it byte by
// byte: under wazero's termination checks every loop iteration of a guest
// costs about 30 ns (docs/RATIONALE.md), so scanning a 400-byte event
// costs more than the rest of a call. policies/sdk has the same indexer
// for native builds; a test in package hooks keeps the two identical.
const (
	IndexDecode = 1 << 31
	indexEnd    = IndexDecode - 1
)

// JSONIndex returns the structural index of b, one entry per byte, as
// husk.json_index writes it. (policies/sdk has its own copy of the
// indexer; a test in package hooks checks the two agree.)
func JSONIndex(b []byte) []uint32 {
	idx := make([]uint32, len(b))
	jsonIndex(b, idx)
	return idx
}

// jsonIndex writes the structural index of b into idx, which must hold
// len(b) zeros. Malformed JSON leaves the entries of the values it cannot
// delimit 0; b larger than 2 GiB is not indexed.
func jsonIndex(b []byte, idx []uint32) {
	if len(b) > indexEnd {
		return
	}
	set := func(i, end int, decode bool) {
		v := uint32(end)
		if decode {
			v |= IndexDecode
		}
		idx[i] = v
	}
	var open []int // offsets of the objects and arrays not yet closed
	for i := 0; i < len(b); {
		switch c := b[i]; {
		case c == '"':
			end, decode, ok := scanString(b, i)
			if !ok {
				return
			}
			set(i, end, decode)
			i = end
		case c == '{' || c == '[':
			open = append(open, i)
			i++
		case c == '}' || c == ']':
			if len(open) == 0 {
				return
			}
			start := open[len(open)-1]
			open = open[:len(open)-1]
			if (b[start] == '{') != (c == '}') {
				return
			}
			set(start, i+1, false)
			i++
		case c == 't' || c == 'f' || c == 'n':
			end := i + literalLen(b[i:])
			if end == i {
				return
			}
			set(i, end, false)
			i = end
		case c == '-' || c >= '0' && c <= '9':
			end := i + 1
			for end < len(b) && isNumberByte(b[end]) {
				end++
			}
			set(i, end, false)
			i = end
		default: // space, ':' and ','
			i++
		}
	}
}

// scanString returns the end of the string starting at b[i] and whether
// its bytes need decoding.
func scanString(b []byte, i int) (end int, decode, ok bool) {
	for j := i + 1; j < len(b); {
		switch c := b[j]; {
		case c == '"':
			return j + 1, decode, true
		case c == '\\':
			decode = true
			j += 2
		case c < 0x20:
			decode = true
			j++
		case c < utf8.RuneSelf:
			j++
		default:
			r, n := utf8.DecodeRune(b[j:])
			if r == utf8.RuneError && n == 1 {
				decode = true
			}
			j += n
		}
	}
	return 0, false, false
}

// literalLen returns the length of the literal true, false or null that b
// starts with, or 0.
func literalLen(b []byte) int {
	for _, w := range []string{"true", "false", "null"} {
		if len(b) >= len(w) && string(b[:len(w)]) == w {
			return len(w)
		}
	}
	return 0
}

func isNumberByte(c byte) bool {
	return c >= '0' && c <= '9' || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-'
}
