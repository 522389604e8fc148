package hooks

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"unicode/utf8"

	"github.com/huskrt/husk/internal/textesc"
)

// Decision is what a module answers at a point: the decision JSON of the
// hook ABI, {"allow": bool, "reason": "...", "patch": [...]}.
type Decision struct {
	Allow  bool
	Reason string
	Patch  []Op
}

// maxReason bounds the reason kept from a decision, in bytes: it ends up
// in logs and in the error a user sees.
const maxReason = 1024

// ErrBadDecision is the cause of a decision that is not valid decision
// JSON: the module's output is garbage.
var ErrBadDecision = errors.New("bad decision")

// ErrPatchNotAllowed is the cause of a patch that changes what its point
// does not allow (or applies to nothing, or does not fit the event's
// schema).
var ErrPatchNotAllowed = errors.New("patch not allowed")

// decisionJSON is the wire form of a decision; pointers tell a missing
// member from a zero one.
type decisionJSON struct {
	Allow  *bool    `json:"allow"`
	Reason *string  `json:"reason"`
	Patch  []opJSON `json:"patch"`
}

var decisionType = reflect.TypeFor[decisionJSON]()

type opJSON struct {
	Op    *string         `json:"op"`
	Path  *string         `json:"path"`
	From  *string         `json:"from"`
	Value json.RawMessage `json:"value"`
}

// ParseDecision parses a module's decision strictly: one JSON object with
// a boolean "allow", an optional string "reason" and an optional "patch"
// array of RFC 6902 operations (at most 1024), and nothing else. Each
// operation must be complete and well-formed (its pointers parse, its
// value is present where the operation needs one). Member names are
// exact (case-sensitive); unknown and repeated members, at any depth, are
// errors, not ignored. Errors wrap ErrBadDecision.
//
// A reason longer than 1 KiB is cut, and invalid UTF-8 in it replaced.
func ParseDecision(b []byte) (Decision, error) {
	if string(b) == `{"allow":true}` { // the common answer, as the SDK writes it
		return Decision{Allow: true}, nil
	}
	// Exact member names, none repeated or unknown, anywhere (a patch's
	// values included): encoding/json alone would take {"ALLOW":true}.
	if err := checkStrict(b, decisionType, false); err != nil {
		return Decision{}, fmt.Errorf("%w: %v", ErrBadDecision, err)
	}
	var w decisionJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return Decision{}, fmt.Errorf("%w: %v", ErrBadDecision, err)
	}
	if w.Allow == nil {
		return Decision{}, fmt.Errorf(`%w: no "allow" member`, ErrBadDecision)
	}
	d := Decision{Allow: *w.Allow}
	if w.Reason != nil {
		d.Reason = cleanReason(*w.Reason)
	}
	if len(w.Patch) > maxOps {
		return Decision{}, fmt.Errorf("%w: patch of %d operations (at most %d)", ErrBadDecision, len(w.Patch), maxOps)
	}
	for i, o := range w.Patch {
		op, err := o.op()
		if err != nil {
			return Decision{}, fmt.Errorf("%w: patch operation %d: %v", ErrBadDecision, i, err)
		}
		d.Patch = append(d.Patch, op)
	}
	return d, nil
}

// op checks one operation of the wire form.
func (o opJSON) op() (Op, error) {
	if o.Op == nil || o.Path == nil {
		return Op{}, errors.New(`an operation needs "op" and "path"`)
	}
	op := Op{Op: *o.Op, Path: *o.Path, Value: o.Value}
	if _, err := parsePointer(op.Path); err != nil {
		return Op{}, fmt.Errorf("path %q: %v", op.Path, err)
	}
	needsValue, needsFrom := false, false
	switch op.Op {
	case "add", "replace", "test":
		needsValue = true
	case "move", "copy":
		needsFrom = true
	case "remove":
	default:
		return Op{}, fmt.Errorf("unknown operation %q", op.Op)
	}
	switch {
	case needsValue && o.Value == nil:
		return Op{}, fmt.Errorf(`%s needs a "value"`, op.Op)
	case !needsValue && o.Value != nil:
		return Op{}, fmt.Errorf(`%s takes no "value"`, op.Op)
	case needsFrom && o.From == nil:
		return Op{}, fmt.Errorf(`%s needs a "from"`, op.Op)
	case !needsFrom && o.From != nil:
		return Op{}, fmt.Errorf(`%s takes no "from"`, op.Op)
	}
	if needsFrom {
		op.From = *o.From
		if _, err := parsePointer(op.From); err != nil {
			return Op{}, fmt.Errorf("from %q: %v", op.From, err)
		}
	}
	if needsValue {
		// Keep the value compact: it is logged and returned to the caller.
		var buf bytes.Buffer
		if err := json.Compact(&buf, o.Value); err != nil {
			return Op{}, fmt.Errorf("value: %v", err)
		}
		op.Value = buf.Bytes()
	}
	return op, nil
}

// cleanReason bounds a module's reason and escapes what is not printable
// (newlines, terminal escape sequences): it reaches logs and users'
// terminals.
func cleanReason(s string) string {
	s = textesc.Escape(s)
	if len(s) <= maxReason {
		return s
	}
	cut := maxReason
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
