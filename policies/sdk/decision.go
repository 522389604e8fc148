package sdk

import (
	"encoding/binary"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Decision is a policy's answer at one point: allow, possibly with a patch
// to the event, or deny with a reason the user sees. Build one with Allow,
// Deny or Patch.
type Decision struct {
	allow  bool
	reason string
	ops    []Op
}

// Allow lets the step go on unchanged.
func Allow() Decision { return Decision{allow: true} }

// Deny stops the step (in enforce mode); reason reaches the user's error.
// A reason over MaxReason bytes is cut there (with "…"), as husk would cut
// it: one quoting a long value of the event cannot make the decision too
// large to return, which would make the call fail and on_error decide.
func Deny(reason string) Decision { return Decision{reason: cutReason(reason)} }

// MaxReason is the longest reason husk keeps, in bytes.
const MaxReason = 1024

func cutReason(s string) string {
	if len(s) <= MaxReason {
		return s
	}
	n := MaxReason - len("…")
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// Patch lets the step go on with the event changed by ops, applied in
// order (RFC 6902). At each point only some paths may change
// (docs/hooks.md); a patch touching others is refused by husk and counts
// as the module failing.
func Patch(ops ...Op) Decision { return Decision{allow: true, ops: ops} }

// Allowed reports whether d allows the step.
func (d Decision) Allowed() bool { return d.allow }

// Reason returns d's reason.
func (d Decision) Reason() string { return d.reason }

// Ops returns d's patch operations.
func (d Decision) Ops() []Op { return slices.Clone(d.ops) }

// Op is one JSON Patch operation.
type Op struct {
	op, path, from string
	value          []byte // JSON text; nil for remove, move, copy
	err            string // why value could not be encoded
}

// Add adds value at path (RFC 6902 "add"): a new member, an array
// element inserted at an index, or appended at index "-".
func Add(path string, value any) Op { return valueOp("add", path, value) }

// Replace replaces the value at path, which must exist.
func Replace(path string, value any) Op { return valueOp("replace", path, value) }

// Test checks that the value at path equals value; if not, the whole
// patch fails (and the module's call with it).
func Test(path string, value any) Op { return valueOp("test", path, value) }

// Remove removes the value at path.
func Remove(path string) Op { return Op{op: "remove", path: path} }

// Move moves the value at from to path.
func Move(from, path string) Op { return Op{op: "move", path: path, from: from} }

// Copy copies the value at from to path.
func Copy(from, path string) Op { return Op{op: "copy", path: path, from: from} }

// String returns op as its JSON text.
func (op Op) String() string { return string(op.appendJSON(nil)) }

// RawJSON is JSON text used as a value as it is.
type RawJSON []byte

func valueOp(kind, path string, v any) Op {
	op := Op{op: kind, path: path}
	op.value, op.err = appendValue(nil, v)
	return op
}

// appendValue appends v as JSON. It knows the types a policy needs and
// uses no reflection; any other type is an error.
func appendValue(b []byte, v any) ([]byte, string) {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), ""
	case bool:
		return strconv.AppendBool(b, v), ""
	case string:
		return appendString(b, v), ""
	case int:
		return strconv.AppendInt(b, int64(v), 10), ""
	case int32:
		return strconv.AppendInt(b, int64(v), 10), ""
	case int64:
		return strconv.AppendInt(b, v, 10), ""
	case uint32:
		return strconv.AppendUint(b, uint64(v), 10), ""
	case uint64:
		return strconv.AppendUint(b, v, 10), ""
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return b, "a NaN or infinite number is not JSON"
		}
		return strconv.AppendFloat(b, v, 'g', -1, 64), ""
	case []string:
		b = append(b, '[')
		for i, s := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, s)
		}
		return append(b, ']'), ""
	case map[string]string:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(appendString(b, k), ':')
			b = appendString(b, v[k])
		}
		return append(b, '}'), ""
	case Value:
		if !v.Exists() {
			return b, "a missing Value has no JSON"
		}
		return append(b, v.Raw()...), ""
	case RawJSON:
		if !ParseValue(v).Exists() {
			return b, "RawJSON is not one JSON value"
		}
		return append(b, v...), ""
	}
	return b, "unsupported value type (want nil, bool, string, int, int32, int64, uint32, uint64, float64, []string, map[string]string, Value or RawJSON)"
}

// JSON returns d as the decision JSON of the hook ABI. An Op whose value
// could not be encoded turns d into a denial that says so: a policy bug
// fails closed.
func (d Decision) JSON() []byte { return d.AppendJSON(nil) }

// AppendJSON appends d's JSON to b.
func (d Decision) AppendJSON(b []byte) []byte {
	for _, op := range d.ops {
		if op.err != "" {
			d = Deny("policy error: " + op.op + " " + op.path + ": " + op.err)
			break
		}
	}
	b = append(b, `{"allow":`...)
	b = strconv.AppendBool(b, d.allow)
	if d.reason != "" {
		b = append(b, `,"reason":`...)
		b = appendString(b, d.reason)
	}
	if d.allow && len(d.ops) > 0 {
		b = append(b, `,"patch":[`...)
		for i, op := range d.ops {
			if i > 0 {
				b = append(b, ',')
			}
			b = op.appendJSON(b)
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

func (op Op) appendJSON(b []byte) []byte {
	b = append(b, `{"op":`...)
	b = appendString(b, op.op)
	b = append(b, `,"path":`...)
	b = appendString(b, op.path)
	if op.from != "" || op.op == "move" || op.op == "copy" {
		b = append(b, `,"from":`...)
		b = appendString(b, op.from)
	}
	if op.value != nil {
		b = append(b, `,"value":`...)
		b = append(b, op.value...)
	}
	return append(b, '}')
}

// appendString appends s as a JSON string literal; invalid UTF-8 becomes
// U+FFFD, as encoding/json does. The common case (printable ASCII without
// quotes or backslashes) is checked 8 bytes at a time and copied whole: a
// loop per byte costs ~60 ns per byte in a module.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := len(b)
	b = append(b, s...)
	if plainASCII(b[start:]) {
		return append(b, '"')
	}
	b = b[:start]
	const hex = "0123456789abcdef"
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// plainASCII reports whether p is printable ASCII without '"' or '\\', 8
// bytes per step (SWAR: each test sets the high bit of the bytes that
// match).
func plainASCII(p []byte) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	bad := func(x uint64) bool {
		quote, backslash := x^(ones*'"'), x^(ones*'\\')
		return (x|(x-ones*0x20)|(quote-ones)&^quote|(backslash-ones)&^backslash)&highs != 0
	}
	if len(p) < 8 {
		var w [8]byte
		copy(w[:], "        ") // spaces are plain
		copy(w[:], p)
		return !bad(binary.LittleEndian.Uint64(w[:]))
	}
	last := binary.LittleEndian.Uint64(p[len(p)-8:]) // overlaps the last full step
	for len(p) >= 8 {
		if bad(binary.LittleEndian.Uint64(p)) {
			return false
		}
		p = p[8:]
	}
	return !bad(last)
}

// Pointer returns the JSON Pointer (RFC 6901) of the member names or
// indexes tokens, escaping "~" and "/": Pointer("spec", "annotations",
// "io.husk/x") is "/spec/annotations/io.husk~1x".
func Pointer(tokens ...string) string {
	var sb strings.Builder
	for _, t := range tokens {
		sb.WriteByte('/')
		for i := 0; i < len(t); i++ {
			switch t[i] {
			case '~':
				sb.WriteString("~0")
			case '/':
				sb.WriteString("~1")
			default:
				sb.WriteByte(t[i])
			}
		}
	}
	return sb.String()
}
