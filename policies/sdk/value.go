package sdk

import (
	"iter"
	"strconv"
	"strings"
)

// Value is one JSON value inside an event or a configuration: a slice of
// the original bytes, read lazily and without reflection. Looking a value
// up visits the members on its path and jumps over everything else in
// constant time, using the structural index of the JSON (which husk
// computes natively, see husk.json_index in docs/hooks.md).
//
// Why it works this way: a module's loops are slow. husk stops runaway
// modules by checking at every loop iteration, which costs about 30 ns;
// a reader that scans an event byte by byte spends tens of µs. Value
// iterates only over members and elements, and compares short strings
// without a loop.
//
// The zero Value is a missing value: every lookup on it gives a missing
// value and every accessor reports false. Malformed JSON reads as missing,
// never as a panic.
//
// A Value of an event is valid only during the call that received the
// event (its bytes are reused by the next call): Str and the other
// accessors copy what they return.
type Value struct {
	doc      *document // nil: missing
	gen      uint32    // doc's generation when v was made
	off, end int       // doc.b[off:end] is the value
}

// Kind is the JSON type of a Value.
type Kind uint8

// The kinds of Value.
const (
	Missing Kind = iota
	Null
	Bool
	Number
	String
	Array
	Object
)

// ParseValue returns the Value of the JSON text b, or a missing Value if b
// does not hold exactly one JSON value (surrounding space allowed). The
// Value refers to b.
func ParseValue(b []byte) Value {
	d := &document{b: b, idx: Index(b)}
	return d.root()
}

// live reports whether v is present: not missing, and not a value of an
// event whose call has ended.
func (v Value) live() bool { return v.doc != nil && v.gen == v.doc.gen }

// Kind returns v's JSON type.
func (v Value) Kind() Kind {
	if !v.live() {
		return Missing
	}
	switch v.doc.b[v.off] {
	case 'n':
		return Null
	case 't', 'f':
		return Bool
	case '"':
		return String
	case '[':
		return Array
	case '{':
		return Object
	}
	return Number
}

// Exists reports whether v is present (it may be null).
func (v Value) Exists() bool { return v.live() }

// Raw returns v's JSON text (nil if missing). It refers to the original
// bytes.
func (v Value) Raw() []byte {
	if !v.live() {
		return nil
	}
	return v.doc.b[v.off:v.end]
}

// Get follows path from v: each element is an object member name or, in an
// array, a decimal index. Get() returns v.
func (v Value) Get(path ...string) Value {
	for _, key := range path {
		switch v.Kind() {
		case Object:
			v = v.member(key)
		case Array:
			i, err := strconv.Atoi(key)
			if err != nil || i < 0 {
				return Value{}
			}
			v = v.Index(i)
		default:
			return Value{}
		}
	}
	return v
}

// member returns the value of object v's first member named key. (husk
// encodes every event itself, from its schema, so names never repeat.)
func (v Value) member(key string) Value {
	for i := v.first(); i >= 0; {
		name, val, next := v.memberAt(i)
		if val.doc == nil {
			return Value{}
		}
		if name.Is(key) {
			return val
		}
		i = next
	}
	return Value{}
}

// first returns the offset of the first member or element of container v,
// or -1 when it is empty.
func (v Value) first() int {
	i := v.doc.space(v.off + 1)
	if i >= v.end-1 {
		return -1
	}
	return i
}

// memberAt reads the member of object v starting at i: its name, its value
// and the offset of the next member (-1 after the last). A missing value
// means malformed JSON.
func (v Value) memberAt(i int) (name, val Value, next int) {
	d := v.doc
	kend, ok := d.valueEnd(i)
	if !ok || d.b[i] != '"' {
		return Value{}, Value{}, -1
	}
	j := d.space(kend)
	if j >= v.end || d.b[j] != ':' {
		return Value{}, Value{}, -1
	}
	j = d.space(j + 1)
	vend, ok := d.valueEnd(j)
	if !ok || vend > v.end {
		return Value{}, Value{}, -1
	}
	return d.value(i, kend), d.value(j, vend), v.after(vend)
}

// elemAt reads the element of array v starting at i and the offset of the
// next one (-1 after the last).
func (v Value) elemAt(i int) (Value, int) {
	end, ok := v.doc.valueEnd(i)
	if !ok || end > v.end {
		return Value{}, -1
	}
	return v.doc.value(i, end), v.after(end)
}

// after returns the start of the member or element after the one ending
// at i, or -1 at the end of container v.
func (v Value) after(i int) int {
	i = v.doc.space(i)
	if i < v.end-1 && v.doc.b[i] == ',' {
		return v.doc.space(i + 1)
	}
	return -1
}

// Index returns element i of array v.
func (v Value) Index(i int) Value {
	if v.Kind() != Array || i < 0 {
		return Value{}
	}
	if start, end, ok := v.hostGet("/" + strconv.Itoa(i)); ok {
		if start < 0 {
			return Value{}
		}
		return v.doc.value(start, end)
	}
	for j, at := 0, v.first(); at >= 0; j++ {
		e, next := v.elemAt(at)
		if j == i || e.doc == nil {
			return e
		}
		at = next
	}
	return Value{}
}

// Elems iterates over the elements of array v, with their indexes.
func (v Value) Elems() iter.Seq2[int, Value] {
	return func(yield func(int, Value) bool) {
		if v.Kind() != Array {
			return
		}
		for j, at := 0, v.first(); at >= 0; j++ {
			e, next := v.elemAt(at)
			if e.doc == nil || !yield(j, e) {
				return
			}
			at = next
		}
	}
}

// Members iterates over the members of object v: each name (a String
// Value) and value.
func (v Value) Members() iter.Seq2[Value, Value] {
	return func(yield func(Value, Value) bool) {
		if v.Kind() != Object {
			return
		}
		for at := v.first(); at >= 0; {
			name, val, next := v.memberAt(at)
			if val.doc == nil || !yield(name, val) {
				return
			}
			at = next
		}
	}
}

// Len returns the number of elements of an array or members of an object,
// and 0 for any other value.
func (v Value) Len() int {
	n := 0
	if v.Kind() == Array {
		for range v.Elems() {
			n++
		}
	} else {
		for range v.Members() {
			n++
		}
	}
	return n
}

// body returns the bytes of string v between its quotes, and whether they
// are its content as they stand (no escapes, valid UTF-8).
func (v Value) body() (b []byte, plain, ok bool) {
	if !v.live() || v.doc.b[v.off] != '"' || v.end-v.off < 2 {
		return nil, false, false
	}
	return v.doc.b[v.off+1 : v.end-1], v.doc.index()[v.off]&indexDecode == 0, true
}

// Is reports whether v is the string s. It does not allocate, and
// compares up to 32 bytes without a loop.
func (v Value) Is(s string) bool {
	b, plain, ok := v.body()
	switch {
	case !ok:
		return false
	case plain:
		return equal(b, s)
	}
	u, ok := unquote(b)
	return ok && u == s
}

// At returns the value at JSON Pointer pointer (RFC 6901) below v, such as
// ev.At("/spec/process/capabilities/bounding"). It is the fast way to reach
// a value of the event: the host finds it natively.
func (v Value) At(pointer string) Value {
	if !v.live() {
		return Value{}
	}
	if start, end, ok := v.hostGet(pointer); ok {
		if start < 0 {
			return Value{}
		}
		return v.doc.value(start, end)
	}
	if pointer == "" {
		return v
	}
	if pointer[0] != '/' {
		return Value{}
	}
	for _, tok := range strings.Split(pointer[1:], "/") {
		v = v.Get(strings.NewReplacer("~1", "/", "~0", "~").Replace(tok))
	}
	return v
}

// hostGet asks the host for the value at pointer below v: ok is false when
// the host cannot; start is -1 when there is no such value.
func (v Value) hostGet(pointer string) (start, end int, ok bool) {
	if !v.doc.input {
		return 0, 0, false
	}
	return hostJSONGet(uint32(v.off), pointer)
}

// Str returns the string v holds, decoded, and whether v is a string.
func (v Value) Str() (string, bool) {
	b, plain, ok := v.body()
	switch {
	case !ok:
		return "", false
	case plain:
		return string(b), true
	}
	return unquote(b)
}

// Bool returns the boolean v holds, and whether v is a boolean.
func (v Value) Bool() (bool, bool) {
	switch {
	case !v.live():
	case v.end-v.off == 4 && v.doc.b[v.off] == 't':
		return true, true
	case v.end-v.off == 5 && v.doc.b[v.off] == 'f':
		return false, true
	}
	return false, false
}

// Int returns the integer v holds, and whether v is a number written as an
// integer that fits in an int64.
func (v Value) Int() (int64, bool) {
	if v.Kind() != Number {
		return 0, false
	}
	n, err := strconv.ParseInt(string(v.Raw()), 10, 64)
	return n, err == nil
}

// Float returns the number v holds, and whether v is a number.
func (v Value) Float() (float64, bool) {
	if v.Kind() != Number {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(v.Raw()), 64)
	return f, err == nil
}

// IsNull reports whether v is null. A missing value is not null.
func (v Value) IsNull() bool { return v.Kind() == Null }

// Contains reports whether array v has the string s as an element.
func (v Value) Contains(s string) bool {
	for _, e := range v.Elems() {
		if e.Is(s) {
			return true
		}
	}
	return false
}

// Strings returns the string elements of array v, skipping other elements.
func (v Value) Strings() []string {
	var out []string
	for _, e := range v.Elems() {
		if s, ok := e.Str(); ok {
			out = append(out, s)
		}
	}
	return out
}
