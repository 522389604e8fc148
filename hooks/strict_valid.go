package hooks

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
)

// checkStrictValid is checkStrict for well-formed text (json.Valid
// accepted it, or husk made it): it walks the bytes themselves, taking
// them as well-formed. Text that is not fails, never panics.
func checkStrictValid(b []byte, t reflect.Type, complete bool) (err error) {
	defer func() {
		if recover() != nil {
			err = errors.New("not well-formed JSON")
		}
	}()
	w := validWalker{b: b, complete: complete}
	if err := w.value(t, nil); err != nil {
		return err
	}
	if w.space(); w.i != len(b) {
		return errors.New("data after the JSON value") // json.Valid refuses it: not reached
	}
	return nil
}

// validWalker walks well-formed JSON text.
type validWalker struct {
	b        []byte
	i        int
	complete bool
}

func (w *validWalker) space() {
	for w.i < len(w.b) {
		switch w.b[w.i] {
		case ' ', '\t', '\n', '\r':
			w.i++
		default:
			return
		}
	}
}

// value checks the value at w.i against t, as strictWalker.value.
func (w *validWalker) value(t reflect.Type, path *strictPath) error {
	t, nullable := strictType(t)
	w.space()
	switch w.b[w.i] {
	case '{':
		w.i++
		return w.object(t, path)
	case '[':
		w.i++
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		if w.space(); w.b[w.i] == ']' {
			w.i++
			return nil
		}
		for i := 0; ; i++ {
			if err := w.value(elem, &strictPath{parent: path, index: i, elem: true}); err != nil {
				return err
			}
			w.space()
			c := w.b[w.i]
			w.i++
			if c == ']' {
				return nil
			}
		}
	case '"':
		w.str()
	case 'n':
		w.i += len("null")
		if w.complete && !nullable && t != nil {
			return errNull(path, t)
		}
	default: // a number, true or false
		for w.i < len(w.b) {
			switch w.b[w.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return nil
			}
			w.i++
		}
	}
	return nil
}

// str skips the string at w.i and returns its text, quotes included.
func (w *validWalker) str() []byte {
	start := w.i
	w.i++
	for {
		switch w.b[w.i] {
		case '\\':
			w.i += 2
		case '"':
			w.i++
			return w.b[start:w.i]
		default:
			w.i++
		}
	}
}

// name reads a member name at w.i, decoded as encoding/json decodes it.
func (w *validWalker) name() string {
	raw := w.str()
	for _, c := range raw {
		if c == '\\' || c >= 0x80 {
			var s string
			_ = json.Unmarshal(raw, &s) // well-formed; invalid UTF-8 becomes U+FFFD, as a token's
			return s
		}
	}
	return string(raw[1 : len(raw)-1])
}

// object checks the members of an object whose '{' was just read, as
// strictWalker.object.
func (w *validWalker) object(t reflect.Type, path *strictPath) error {
	var fields map[string]strictField
	var elem reflect.Type
	switch {
	case t != nil && t.Kind() == reflect.Struct:
		fields = structFields(t)
	case t != nil && t.Kind() == reflect.Map:
		elem = t.Elem()
	}
	var seen []string
	if w.space(); w.b[w.i] == '}' {
		w.i++
	} else {
		for {
			w.space()
			name := w.name()
			w.space()
			w.i++ // :
			if slices.Contains(seen, name) {
				return errRepeated(path, name)
			}
			seen = append(seen, name)
			vt := elem
			if fields != nil {
				f, ok := fields[name]
				if !ok {
					return unknownMember(path, name, fields)
				}
				vt = f.typ
			}
			if err := w.value(vt, &strictPath{parent: path, name: name}); err != nil {
				return err
			}
			w.space()
			c := w.b[w.i]
			w.i++
			if c == '}' {
				break
			}
		}
	}
	if w.complete {
		return missingMember(path, fields, seen)
	}
	return nil
}
