package hooks

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// checkStrict checks that b is one JSON value that fits t exactly as
// written, which encoding/json alone does not: member names must match
// the schema's exactly (encoding/json matches them case-insensitively, so
// that {"ALLOW":true} or {"UID":0} would pass), no object may repeat a
// member (encoding/json keeps the last, so a reader that keeps the first
// sees another value), and no member may be unknown. Below values that
// decode themselves (json.RawMessage, V1, any) only repeated members are
// looked for.
//
// With complete, b must also hold every member the schema always has
// (those without omitempty or omitzero, which husk's encoding writes
// always), and null only where the schema allows it (pointers, slices,
// maps): a patched event cannot drop a member into its Go zero value,
// such as /process/user into uid 0.
//
// Errors name the JSON Pointer of the offending value.
func checkStrict(b []byte, t reflect.Type, complete bool) error {
	if json.Valid(b) {
		// Well-formed: walk the bytes (no token allocations; a patched
		// event's check was most of a patched call).
		return checkStrictValid(b, t, complete)
	}
	// The token walker reports where the text breaks, as encoding/json
	// words it.
	return checkStrictTokens(b, t, complete)
}

// checkStrictTokens is checkStrict by encoding/json's tokens, for any
// text.
func checkStrictTokens(b []byte, t reflect.Type, complete bool) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	w := strictWalker{dec: dec, complete: complete}
	if err := w.value(t, nil); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the JSON value")
	}
	return nil
}

type strictWalker struct {
	dec      *json.Decoder
	complete bool
}

// strictPath is where the walker is: a member name or an array index
// below its parent (nil: the document). It is rendered as a JSON Pointer
// only for an error, so that a walk builds no strings.
type strictPath struct {
	parent *strictPath
	name   string
	index  int // when name is ""
	elem   bool
}

// String returns p as a JSON Pointer.
func (p *strictPath) String() string {
	if p == nil {
		return ""
	}
	if p.elem {
		return p.parent.String() + "/" + strconv.Itoa(p.index)
	}
	return p.parent.String() + "/" + escapeToken(p.name)
}

var (
	unmarshalerType = reflect.TypeFor[json.Unmarshaler]()
	rawMessageType  = reflect.TypeFor[json.RawMessage]()
)

// value checks the next value of w's input against t (nil: any value).
func (w *strictWalker) value(t reflect.Type, path *strictPath) error {
	t, nullable := strictType(t)
	tok, err := w.dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		return w.object(t, path)
	case json.Delim('['):
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for i := 0; w.dec.More(); i++ {
			if err := w.value(elem, &strictPath{parent: path, index: i, elem: true}); err != nil {
				return err
			}
		}
		_, err := w.dec.Token() // ]
		return err
	case nil:
		if w.complete && !nullable && t != nil {
			return errNull(path, t)
		}
	}
	return nil
}

// strictType returns the type whose members a value of t is checked
// against (nil: none, only repeated members are looked for) and whether
// the value may be null.
func strictType(t reflect.Type) (_ reflect.Type, nullable bool) {
	if t == nil {
		return nil, true
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Map, reflect.Interface:
		nullable = true
	}
	// A type that decodes itself checks its own text (V1 refuses
	// anything but 1); only repeated members are looked for below it.
	if t == rawMessageType || t.Kind() == reflect.Interface || reflect.PointerTo(t).Implements(unmarshalerType) {
		t = nil
	}
	return t, nullable
}

// object checks the members of an object whose '{' was just read.
func (w *strictWalker) object(t reflect.Type, path *strictPath) error {
	var fields map[string]strictField
	var elem reflect.Type
	switch {
	case t != nil && t.Kind() == reflect.Struct:
		fields = structFields(t)
	case t != nil && t.Kind() == reflect.Map:
		elem = t.Elem()
	}
	var seen []string // the members so far: objects of events are small
	for w.dec.More() {
		tok, err := w.dec.Token()
		if err != nil {
			return err
		}
		name := tok.(string) // the decoder only hands out string keys
		member := &strictPath{parent: path, name: name}
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
		if err := w.value(vt, member); err != nil {
			return err
		}
	}
	if _, err := w.dec.Token(); err != nil { // }
		return err
	}
	if w.complete {
		return missingMember(path, fields, seen)
	}
	return nil
}

func errNull(path *strictPath, t reflect.Type) error {
	return fmt.Errorf("%s: null, where the schema has a %s", pathOrRoot(path), kindName(t))
}

func errRepeated(path *strictPath, name string) error {
	return fmt.Errorf("%s: member %q appears twice", pathOrRoot(path), name)
}

// missingMember returns an error naming a member of fields that is
// always encoded but not among those seen, if any: of several, the first
// in the struct's order, so that the error is the same on every run.
func missingMember(path *strictPath, fields map[string]strictField, seen []string) error {
	missing, first := "", -1
	for name, f := range fields {
		if f.required && (first < 0 || f.order < first || f.order == first && name < missing) && !slices.Contains(seen, name) {
			missing, first = name, f.order
		}
	}
	if first < 0 {
		return nil
	}
	return fmt.Errorf("%s: member %q is missing", pathOrRoot(path), missing)
}

func unknownMember(path *strictPath, name string, fields map[string]strictField) error {
	for known := range fields {
		if strings.EqualFold(known, name) {
			return fmt.Errorf("%s: unknown member %q (names are case-sensitive: %q)", pathOrRoot(path), name, known)
		}
	}
	return fmt.Errorf("%s: unknown member %q", pathOrRoot(path), name)
}

// strictField is a member of a struct's JSON form.
type strictField struct {
	typ      reflect.Type
	required bool // encoded always: no omitempty or omitzero
	order    int  // the member's place in the JSON form, embedded structs' members in place
}

var fieldCache sync.Map // reflect.Type → map[string]strictField

// structFields returns the members of t's JSON form, as encoding/json
// names them (embedded structs without a name flattened).
func structFields(t reflect.Type) map[string]strictField {
	if f, ok := fieldCache.Load(t); ok {
		return f.(map[string]strictField)
	}
	fields := map[string]strictField{}
	for f := range t.Fields() {
		tag, hasTag := f.Tag.Lookup("json")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" && opts == "" {
			continue
		}
		ft := f.Type
		if f.Anonymous && !hasTag {
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				base := len(fields)
				for n, sf := range structFields(ft) {
					sf.order += base
					fields[n] = sf
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		omit := strings.Contains(","+opts+",", ",omitempty,") || strings.Contains(","+opts+",", ",omitzero,")
		fields[name] = strictField{typ: f.Type, required: !omit, order: len(fields)}
	}
	fieldCache.Store(t, fields)
	return fields
}

func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Struct:
		return "object"
	case reflect.Bool:
		return "boolean"
	case reflect.String:
		return "string"
	case reflect.Array:
		return "array"
	}
	return "number"
}

func pathOrRoot(p *strictPath) string {
	if p == nil {
		return "the document"
	}
	return p.String()
}
