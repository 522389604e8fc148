package sdk

// document is a JSON text and its structural index.
type document struct {
	b   []byte
	idx []uint32 // one entry per byte of b (see jsonIndex); nil until needed
	// input is set while b is the JSON input of the current call into the
	// module: the host's JSON helpers (At, In, Find, PrefixIn) then do the
	// work natively.
	input bool
	gen   uint32 // advanced when the document is reused for another text
}

// start makes d hold b, the input of a call, invalidating Values of the
// text it held.
func (d *document) start(b []byte, input bool) {
	d.gen++
	d.b, d.idx, d.input = b, nil, input
}

// end invalidates d's Values.
func (d *document) end() {
	d.gen++
	d.b, d.idx, d.input = nil, nil, false
}

// value returns the Value of d at [off, end).
func (d *document) value(off, end int) Value { return Value{d, d.gen, off, end} }

// index returns d's structural index, computing it (or, for the call's
// input in a module, having the host compute it) once.
func (d *document) index() []uint32 {
	if d.idx == nil {
		if d.input {
			d.idx = inputIndex(d.b)
		} else {
			d.idx = Index(d.b)
		}
	}
	return d.idx
}

// root returns the one value d holds, or a missing Value.
func (d *document) root() Value {
	i := d.space(0)
	if d.input {
		// husk sends one JSON value: its extent needs no index.
		end := len(d.b)
		for end > i && isSpace(d.b[end-1]) {
			end--
		}
		if end > i {
			return d.value(i, end)
		}
		return Value{}
	}
	end, ok := d.valueEnd(i)
	if !ok || d.space(end) != len(d.b) {
		return Value{}
	}
	return d.value(i, end)
}

// valueEnd returns the end of the value starting at b[i].
func (d *document) valueEnd(i int) (int, bool) {
	idx := d.index()
	if i < 0 || i >= len(idx) {
		return 0, false
	}
	end := int(idx[i] & indexEnd)
	return end, end > i && end <= len(d.b)
}

// space returns the first offset at or after i that is not JSON space.
// JSON from husk has none, so the loop is entered only when needed.
func (d *document) space(i int) int {
	if i < len(d.b) && isSpace(d.b[i]) {
		for i < len(d.b) && isSpace(d.b[i]) {
			i++
		}
	}
	return i
}

func isSpace(c byte) bool { return c == ' ' || c == '\n' || c == '\t' || c == '\r' }
