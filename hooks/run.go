//go:build !husk_nohooks

package hooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"time"

	"github.com/containerd/errdefs"

	"github.com/huskrt/husk/internal/hookconf"
	"github.com/huskrt/husk/internal/logging"
	"github.com/huskrt/husk/wasmhost"
)

// Run asks the chain of point about event and returns the outcome: first
// its changing hooks, then its checking hooks, each in config order. event
// is the point's *Event type (or a pointer to it), or its JSON ([]byte or
// json.RawMessage), which must match the schema.
//
// Each hook sees the event as patched by the hooks before it, so every
// checking hook sees the final event; a checking hook's patch is a
// failure (ErrCheckPatched). An enforcing
// hook's denial stops the chain; an auditing hook's denial, patch or
// failure is only logged. A hook that fails (trap, deadline, memory,
// garbage, missing export, a patch that is not allowed or does not apply)
// gets its on_error outcome: deny stops the chain with the failure as
// Cause, allow logs it and goes on without its patch. Every denial is
// logged with the point, hook, reason and the ids the event carries.
//
// The error is for the caller's mistakes (errdefs.ErrInvalidArgument: an
// unknown point, an event that does not match it) and for ctx ending; the
// Outcome then denies. A denial is not an error: see Outcome.Err.
func (e *Engine) Run(ctx context.Context, point Point, event any) (Outcome, error) {
	return e.run(ctx, point, event, "")
}

// Recheck asks only the checking hooks of point about event, which a
// later point's changing hooks changed (after): they approved the step
// before that change, and must see what it will now be. The outcome and
// errors are Run's; a denial's Outcome has After set.
func (e *Engine) Recheck(ctx context.Context, point Point, event any, after Point) (Outcome, error) {
	if !after.Valid() {
		return Outcome{Point: point}, fmt.Errorf("hooks: recheck of %s after unknown point %q: %w", point, after, errdefs.ErrInvalidArgument)
	}
	return e.run(ctx, point, event, after)
}

// Checks reports whether point has checking hooks.
func (e *Engine) Checks(point Point) bool {
	for _, h := range e.chains[point] {
		if h.kind == hookconf.Check {
			return true
		}
	}
	return false
}

// run asks the chain of point, or with after set only its checking hooks.
func (e *Engine) run(ctx context.Context, point Point, event any, after Point) (Outcome, error) {
	info, ok := points[point]
	if !ok {
		return Outcome{Point: point}, fmt.Errorf("hooks: unknown point %q: %w", point, errdefs.ErrInvalidArgument)
	}
	e.closing.RLock()
	defer e.closing.RUnlock()
	if e.closed {
		return Outcome{Point: point}, fmt.Errorf("hooks: %s: %w", point, ErrClosed)
	}
	out := Outcome{Point: point, Allowed: true}
	chain := e.chains[point]
	if after != "" {
		chain = slices.DeleteFunc(slices.Clone(chain), func(h *hook) bool { return h.kind != hookconf.Check })
	}
	if len(chain) == 0 {
		return out, nil
	}
	raw, err := encodeEvent(point, info, event)
	if err != nil {
		return Outcome{Point: point}, err
	}
	for _, h := range chain {
		if err := ctx.Err(); err != nil {
			return Outcome{Point: point}, fmt.Errorf("hooks: %s: %w", point, err)
		}
		if err := h.wait(ctx); err != nil { // Start: the module may still be loading
			return Outcome{Point: point}, fmt.Errorf("hooks: %s: %w", point, err)
		}
		start := time.Now()
		d, patched, err := h.decide(ctx, point, info, raw)
		result := classify(d, err)
		if e.observe != nil {
			e.observe(Call{Hook: h.name, Point: point, Result: result, Duration: time.Since(start)})
		}
		audit := h.mode == hookconf.Audit
		log := func(level slog.Level, msg string, more ...any) {
			if l := logging.L(ctx); l.Enabled(ctx, level) { // the attributes cost a decode
				if after != "" {
					more = append(more, "changed_at", after)
				}
				l.Log(ctx, level, msg, eventAttrs(raw, point, h, more...)...)
			}
		}
		switch {
		case err != nil && ctx.Err() != nil:
			// The caller gave up during the call: not the hook's failure.
			return Outcome{Point: point}, fmt.Errorf("hooks: %s: hook %q: %w", point, h.name, err)
		case err != nil && (audit || h.onError == hookconf.Allow):
			log(slog.LevelError, "hook failed; going on", "mode", h.mode, "on_error", h.onError, "error", err)
		case err != nil:
			log(slog.LevelError, "hook failed; denying", "on_error", h.onError, "error", err)
			return Outcome{Point: point, After: after, Hook: h.name, Reason: err.Error(), Cause: err, Event: raw, Patches: out.Patches}, nil
		case !d.Allow && audit:
			log(slog.LevelWarn, "audit: hook would deny", "reason", d.Reason)
		case !d.Allow:
			log(slog.LevelWarn, "hook denied", "reason", d.Reason)
			return Outcome{Point: point, After: after, Hook: h.name, Reason: d.Reason, Event: raw, Patches: out.Patches}, nil
		case patched != nil && audit:
			if logging.L(ctx).Enabled(ctx, slog.LevelInfo) { // rendering the patch costs
				log(slog.LevelInfo, "audit: hook would patch", "patch", opsAttr(d.Patch))
			}
		case patched != nil:
			if logging.L(ctx).Enabled(ctx, slog.LevelInfo) { // rendering the patch costs
				log(slog.LevelInfo, "hook patched", "patch", opsAttr(d.Patch))
			}
			raw = patched
			out.Patches = append(out.Patches, Patch{Hook: h.name, Ops: d.Patch})
		}
	}
	out.Event = raw
	return out, nil
}

// decide is one call of h: the module's decision and, when it allows with
// a patch, the patched event (checked against the point's rules and
// schema). Every error names the hook.
//
// The hook's timeout bounds the whole: the module's call, then reading its
// decision and applying its patch, which are bounded in bytes (the
// decision's size, the copy budget) and stop at the same deadline, so that
// a module that answers in time cannot make husk work past it.
func (h *hook) decide(ctx context.Context, point Point, info pointInfo, event []byte) (Decision, []byte, error) {
	if h.module == nil {
		return Decision{}, nil, h.loadErr
	}
	deadline := time.Now().Add(h.timeout)
	b, err := h.module.Decide(ctx, string(point), event)
	if err != nil {
		return Decision{}, nil, err
	}
	late := func(phase string) error {
		if time.Now().Before(deadline) {
			return nil
		}
		return &wasmhost.Error{Module: h.name, Op: phase, Kind: wasmhost.ErrTimeout, Limit: h.timeout}
	}
	if err := late("decision"); err != nil {
		return Decision{}, nil, err
	}
	d, err := ParseDecision(b)
	if err != nil {
		return Decision{}, nil, fmt.Errorf("module %q: %w", h.name, err)
	}
	if !d.Allow || len(d.Patch) == 0 {
		return d, nil, nil
	}
	if h.kind == hookconf.Check {
		return Decision{}, nil, fmt.Errorf("module %q: %w", h.name, ErrCheckPatched)
	}
	if err := checkOps(info.rules, d.Patch); err != nil {
		return Decision{}, nil, fmt.Errorf("module %q: %w", h.name, err)
	}
	if err := late("patch"); err != nil {
		return Decision{}, nil, err
	}
	// Most patches add or replace members of objects: spliced into the
	// text, which canonical encodes again below.
	patched, ok := spliceOps(event, d.Patch)
	if !ok {
		patched, err = applyPatch(event, d.Patch, deadline)
	}
	if errors.Is(err, errDeadline) {
		return Decision{}, nil, late("patch")
	}
	if err != nil {
		return Decision{}, nil, fmt.Errorf("module %q: %w: %w", h.name, ErrBadPatch, err)
	}
	if patched, err = canonical(info, patched, true); err != nil {
		return Decision{}, nil, fmt.Errorf("module %q: %w: the patched event does not fit the %s schema: %w", h.name, ErrBadPatch, point, err)
	}
	if err := late("patch"); err != nil {
		return Decision{}, nil, err
	}
	return d, patched, nil
}

// classify names the result of a call, for Observe.
func classify(d Decision, err error) Result {
	switch {
	case err != nil:
		return ResultError
	case !d.Allow:
		return ResultDeny
	case len(d.Patch) > 0:
		return ResultPatch
	}
	return ResultAllow
}

// encodeEvent returns the JSON a module sees of event.
func encodeEvent(point Point, info pointInfo, event any) ([]byte, error) {
	switch ev := event.(type) {
	case []byte:
		return checkRaw(point, info, ev)
	case json.RawMessage:
		return checkRaw(point, info, ev)
	case Event:
		if ev.Point() != point {
			return nil, fmt.Errorf("hooks: a %s event passed at %s: %w", ev.Point(), point, errdefs.ErrInvalidArgument)
		}
		b, err := json.Marshal(ev)
		if err != nil {
			return nil, fmt.Errorf("hooks: encode %s event: %w", point, err)
		}
		return b, nil
	}
	return nil, fmt.Errorf("hooks: %T is not an event: %w", event, errdefs.ErrInvalidArgument)
}

// checkRaw checks that raw is an event of point and returns its canonical
// JSON (husk's own encoding: no repeated or unknown members).
func checkRaw(point Point, info pointInfo, raw []byte) ([]byte, error) {
	var head struct {
		Version json.RawMessage `json:"version"`
	}
	if err := json.Unmarshal(raw, &head); err != nil || head.Version == nil {
		return nil, fmt.Errorf("hooks: %s event: not a JSON object with a \"version\": %w", point, errdefs.ErrInvalidArgument)
	}
	b, err := canonical(info, raw, false)
	if err != nil {
		return nil, fmt.Errorf("hooks: %s event: %w: %w", point, err, errdefs.ErrInvalidArgument)
	}
	return b, nil
}

// canonical decodes raw strictly into the point's event type (exact
// member names, none unknown or repeated; with complete, none missing and
// no null where the schema has none: see checkStrict) and encodes it
// again. Patched events are complete: husk encoded every member before
// the patch, so one missing is one the patch dropped; and well-formed
// (husk's encoding with parsed values spliced in, or the tree encoded):
// their check skips json.Valid.
func canonical(info pointInfo, raw []byte, complete bool) ([]byte, error) {
	check := checkStrict
	if complete {
		check = checkStrictValid
	}
	if err := check(raw, info.event, complete); err != nil {
		return nil, err
	}
	v := reflect.New(info.event).Interface()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("data after the event")
	}
	return json.Marshal(v)
}

// eventAttrs returns log attributes naming the point, the hook and the
// sandbox, container and exec the event is about, followed by more.
func eventAttrs(raw []byte, point Point, h *hook, more ...any) []any {
	var ids struct {
		Sandbox struct {
			ID        string `json:"id"`
			Namespace string `json:"namespace"`
		} `json:"sandbox"`
		Container struct {
			ID string `json:"id"`
		} `json:"container"`
		ExecID string `json:"exec_id"`
	}
	_ = json.Unmarshal(raw, &ids) // best effort: husk encoded it
	attrs := []any{"point", point, "hook", h.name, "module", h.path}
	for _, kv := range [][2]string{
		{"sandbox", ids.Sandbox.ID}, {"namespace", ids.Sandbox.Namespace},
		{"container", ids.Container.ID}, {"exec", ids.ExecID},
	} {
		if kv[1] != "" {
			attrs = append(attrs, kv[0], kv[1])
		}
	}
	return append(attrs, more...)
}

// opsAttr renders a patch for a log line.
func opsAttr(ops []Op) string {
	b, _ := json.Marshal(ops)
	return string(b)
}
