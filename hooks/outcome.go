package hooks

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"

	"github.com/containerd/errdefs"
)

// Outcome is the result of running the chain of a point.
type Outcome struct {
	Point Point
	// After is, for Engine.Recheck, the later point whose changing hooks
	// changed what Point's checking hooks had approved; empty for Run.
	After   Point
	Allowed bool
	// Hook is the hook that denied (by its decision, or by failing with
	// on_error = deny); empty when allowed.
	Hook string
	// Reason is the denying hook's reason, or its error's text when it
	// failed.
	Reason string
	// Cause is the failure behind a denial by a failing hook; nil when the
	// hook denied by its decision.
	Cause error
	// Event is the JSON of the event after every patch applied; nil when no
	// hook is configured at the point.
	Event json.RawMessage
	// Patches are the patches applied, in chain order.
	Patches []Patch
}

// Patch is the patch one hook applied.
type Patch struct {
	Hook string
	Ops  []Op
}

// Patched reports whether any hook changed the event.
func (o *Outcome) Patched() bool { return len(o.Patches) > 0 }

// Decode stores the patched event into v, a pointer to the event passed to
// Run: when a hook changed the event, *v is reset and decoded from Event
// (so that members a patch removed are gone); otherwise v is left as is.
func (o *Outcome) Decode(v any) error {
	if !o.Patched() {
		return nil
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("decode %s event into %T: %w", o.Point, v, errdefs.ErrInvalidArgument)
	}
	rv.Elem().SetZero()
	if err := json.Unmarshal(o.Event, v); err != nil {
		return fmt.Errorf("decode %s event: %w", o.Point, err)
	}
	return nil
}

// Err returns nil when the step is allowed and a *DeniedError otherwise:
// the error to hand to the user (it is errdefs.ErrPermissionDenied).
func (o *Outcome) Err() error {
	if o.Allowed {
		return nil
	}
	return &DeniedError{Point: o.Point, After: o.After, Hook: o.Hook, Reason: o.Reason, Cause: o.Cause}
}

// DeniedError is a step denied by a hook.
type DeniedError struct {
	Point  Point
	After  Point // the later point whose change was denied (Engine.Recheck), if any
	Hook   string
	Reason string
	Cause  error // the hook's failure, when it denied by failing
}

// Error says which hook denied which step and why, as the user sees it.
func (e *DeniedError) Error() string {
	point := string(e.Point)
	if e.After != "" {
		point += " (as changed at " + string(e.After) + ")"
	}
	if e.Cause != nil {
		return fmt.Sprintf("hook %s failed at %s (on_error = deny): %v", strconv.Quote(e.Hook), point, e.Cause)
	}
	reason := e.Reason
	if reason == "" {
		reason = "no reason given"
	}
	return fmt.Sprintf("hook %s denied %s: %s", strconv.Quote(e.Hook), point, reason)
}

// Unwrap returns errdefs.ErrPermissionDenied and the cause, if any.
func (e *DeniedError) Unwrap() []error {
	if e.Cause == nil {
		return []error{errdefs.ErrPermissionDenied}
	}
	return []error{errdefs.ErrPermissionDenied, e.Cause}
}

// ErrDenied is matched by every *DeniedError.
var ErrDenied = errors.New("denied by a hook")

// Is makes errors.Is(err, ErrDenied) true for a *DeniedError.
func (e *DeniedError) Is(target error) bool { return target == ErrDenied }
