package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"reflect"
	"strings"

	"github.com/huskrt/husk/hooks"
	"github.com/huskrt/husk/runtime/config"
)

// A suite is what "policy test --suite" reads: events, each with the
// verdict expected of the module, as opa test runs a policy's tests.
type suite struct {
	// Config is the config table of cases that give none; absent, that of
	// --config.
	Config map[string]any `json:"config"`
	Cases  []suiteCase    `json:"cases"`
}

type suiteCase struct {
	Name  string `json:"name"`
	Point string `json:"point"`
	// Event is the event itself, or EventFile a file holding it
	// (relative to the suite's directory).
	Event     json.RawMessage `json:"event"`
	EventFile string          `json:"event_file"`
	// Config, when present ({} included), replaces the suite's.
	Config map[string]any `json:"config"`
	// Want is allow, deny or error (the module failed: trap, timeout,
	// garbage, a patch it may not make...).
	Want string `json:"want"`
	// Reason, when set, must be part of a denial's reason.
	Reason string `json:"reason"`
	// Patch, when set, is the JSON Patch an allowing (changing) hook must
	// return, exactly.
	Patch json.RawMessage `json:"patch"`
}

// Bounds on a suite: a file like an event file, and cases by the thousand.
const maxSuiteCases = 10000

// readConfigObject reads a config table given as a JSON object.
func readConfigObject(path string) (map[string]any, error) {
	b, err := readInput(path, maxConfigFile, nil)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil || m == nil {
		if err == nil {
			err = errors.New("null")
		}
		return nil, fmt.Errorf("config %s: want a JSON object: %w", path, err)
	}
	return m, nil
}

// loadSuite reads and checks a suite file.
func loadSuite(path string) (*suite, error) {
	b, err := readInput(path, maxEventFile, nil)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields() // a typo in a case is an error, not a check skipped
	var s suite
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("suite %s: %w", path, err)
	}
	switch {
	case len(s.Cases) == 0:
		return nil, fmt.Errorf("suite %s: no cases", path)
	case len(s.Cases) > maxSuiteCases:
		return nil, fmt.Errorf("suite %s: %d cases, at most %d", path, len(s.Cases), maxSuiteCases)
	}
	names := make(map[string]bool)
	for i := range s.Cases {
		c := &s.Cases[i]
		where := fmt.Sprintf("suite %s: case %d (%q)", path, i+1, c.Name)
		switch {
		case c.Name == "":
			return nil, fmt.Errorf("suite %s: case %d: no name", path, i+1)
		case names[c.Name]:
			return nil, fmt.Errorf("%s: a second case of that name", where)
		case c.Point == "":
			return nil, fmt.Errorf("%s: no point", where)
		case c.Want != "allow" && c.Want != "deny" && c.Want != "error":
			return nil, fmt.Errorf("%s: want %q: want allow, deny or error", where, c.Want)
		case (len(c.Event) == 0) == (c.EventFile == ""):
			return nil, fmt.Errorf("%s: give event or event_file, one of them", where)
		case c.Reason != "" && c.Want != "deny":
			return nil, fmt.Errorf("%s: a reason is expected of a denial only", where)
		case len(c.Patch) > 0 && c.Want != "allow":
			return nil, fmt.Errorf("%s: a patch is expected of an allowing hook only", where)
		}
		names[c.Name] = true
		if c.EventFile != "" {
			p := c.EventFile
			if !filepath.IsAbs(p) {
				p = filepath.Join(filepath.Dir(path), p)
			}
			if c.Event, err = readInput(p, maxEventFile, nil); err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
		}
	}
	return &s, nil
}

// runSuite runs every case of the suite at path on the module of h (whose
// Config is --config's table) and returns the exit status: 0 all passed,
// 1 some failed, 2 error.
func runSuite(ctx context.Context, h config.Hook, path string, stdout, stderr io.Writer) int {
	fail := func(err error) int {
		fmt.Fprintf(stderr, "huskctl policy test: %v\n", err)
		return 2
	}
	s, err := loadSuite(path)
	if err != nil {
		return fail(err)
	}
	// One engine per config table (a module gets its config once, when it
	// starts), made when a case first needs it.
	engines := make(map[string]*hooks.Engine)
	defer func() {
		for _, e := range engines {
			_ = e.Close(ctx)
		}
	}()
	engineFor := func(c *suiteCase) (*hooks.Engine, error) {
		cfg := h.Config
		if s.Config != nil {
			cfg = s.Config
		}
		if c.Config != nil {
			cfg = c.Config
		}
		key, err := json.Marshal(cfg)
		if err != nil {
			return nil, err
		}
		if e, ok := engines[string(key)]; ok {
			return e, nil
		}
		hc := h
		hc.Config = cfg
		hc.Points = []string{c.Point}
		// Every point the suite uses, so that one engine serves them all.
		for _, o := range s.Cases {
			if !strings.Contains(" "+strings.Join(hc.Points, " ")+" ", " "+o.Point+" ") {
				hc.Points = append(hc.Points, o.Point)
			}
		}
		e, err := hooks.New(ctx, []config.Hook{hc.WithDefaults()}, hooks.Options{})
		if err != nil {
			return nil, err
		}
		engines[string(key)] = e
		return e, nil
	}

	passed := 0
	for i := range s.Cases {
		c := &s.Cases[i]
		e, err := engineFor(c)
		if err != nil {
			// A module that does not load, or a point husk does not know,
			// is the suite's error, not one case's verdict.
			return fail(fmt.Errorf("case %q: %w", c.Name, err))
		}
		problem := judge(c, runCase(ctx, e, c))
		if problem == "" {
			passed++
			fmt.Fprintf(stdout, "PASS  %s\n", c.Name)
			continue
		}
		fmt.Fprintf(stdout, "FAIL  %s: %s\n", c.Name, problem)
	}
	fmt.Fprintf(stdout, "%d of %d passed\n", passed, len(s.Cases))
	if passed != len(s.Cases) {
		return 1
	}
	return 0
}

// caseResult is what the module made of a case's event.
type caseResult struct {
	out hooks.Outcome
	err error // the module failed (trap, timeout, patch not allowed, bad event...)
}

func runCase(ctx context.Context, e *hooks.Engine, c *suiteCase) caseResult {
	out, err := e.Run(ctx, hooks.Point(c.Point), c.Event)
	if err == nil && out.Cause != nil {
		err = out.Cause
	}
	return caseResult{out: out, err: err}
}

// judge compares a case's result with what it expects; "" when they agree.
func judge(c *suiteCase, r caseResult) string {
	got := "allow"
	switch {
	case r.err != nil:
		got = "error"
	case !r.out.Allowed:
		got = "deny"
	}
	if got != c.Want {
		detail := ""
		switch got {
		case "error":
			detail = " (" + r.err.Error() + ")"
		case "deny":
			detail = " (" + r.out.Reason + ")"
		}
		return fmt.Sprintf("got %s%s, want %s", got, detail, c.Want)
	}
	if c.Reason != "" && !strings.Contains(r.out.Reason, c.Reason) {
		return fmt.Sprintf("denied with reason %q, want it to say %q", r.out.Reason, c.Reason)
	}
	if len(c.Patch) > 0 {
		var ops []hooks.Op
		for _, p := range r.out.Patches {
			ops = append(ops, p.Ops...)
		}
		gotJSON, _ := json.Marshal(ops)
		var want, have any
		if err := json.Unmarshal(c.Patch, &want); err != nil {
			return fmt.Sprintf("its patch is not JSON: %v", err)
		}
		_ = json.Unmarshal(gotJSON, &have)
		if !reflect.DeepEqual(want, have) {
			return fmt.Sprintf("patch %s, want %s", gotJSON, c.Patch)
		}
	}
	return ""
}
