package config

import (
	"errors"
	"fmt"

	"github.com/containerd/errdefs"
	"github.com/pelletier/go-toml/v2"
)

// Error is a problem with the content of one config file. Line and Column
// are 1-based and 0 when unknown; Key is the dotted key concerned, empty for
// errors that are about no key (TOML syntax). Every Error is an
// errdefs.ErrInvalidArgument.
type Error struct {
	File   string
	Line   int
	Column int
	Key    string
	Err    error
}

// Error formats e as "file:line:col: key K: cause", leaving out what is
// unknown.
func (e *Error) Error() string {
	s := e.File
	if e.Line > 0 {
		s += fmt.Sprintf(":%d:%d", e.Line, e.Column)
	}
	if e.Key != "" {
		s += ": key " + e.Key
	}
	return s + ": " + e.Err.Error()
}

// Unwrap returns the cause and errdefs.ErrInvalidArgument, so that both
// errors.Is(err, errdefs.ErrInvalidArgument) and errors.As on the cause
// (such as a *toml.DecodeError) work.
func (e *Error) Unwrap() []error {
	return []error{e.Err, errdefs.ErrInvalidArgument}
}

// errUnknownKey is the cause of an Error for a key not in the schema.
var errUnknownKey = errors.New("unknown key")

// decodeError turns an error from decoding file (whose content is data) into
// *Error values, joined when there are several (one per unknown key).
func decodeError(file string, data []byte, err error) error {
	var missing *toml.StrictMissingError
	if errors.As(err, &missing) {
		errs := make([]error, 0, len(missing.Errors))
		for i := range missing.Errors {
			line, col := missing.Errors[i].Position()
			errs = append(errs, &Error{
				File: file, Line: line, Column: col,
				Key: formatKey(missing.Errors[i].Key()),
				Err: errUnknownKey,
			})
		}
		return errors.Join(errs...)
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		line, col := de.Position()
		// go-toml's key can be relative to the current table (duplicate keys)
		// or stop at an inline table; the index knows the full key written at
		// that position.
		key, ok := indexKeys(data).keyAt(line, col)
		if !ok {
			key = formatKey(de.Key())
		}
		return &Error{File: file, Line: line, Column: col, Key: key, Err: de}
	}
	return &Error{File: file, Err: err}
}

// problemErrors turns validation problems found after applying file into
// *Error values, locating each key in data when the file sets it.
func problemErrors(file string, data []byte, ps []problem) error {
	idx := indexKeys(data)
	errs := make([]error, 0, len(ps))
	for _, p := range ps {
		e := &Error{File: file, Key: p.key, Err: p.err}
		if pos, ok := idx.locate(p.key); ok {
			e.Line, e.Column = pos.line, pos.col
		}
		errs = append(errs, e)
	}
	return errors.Join(errs...)
}
