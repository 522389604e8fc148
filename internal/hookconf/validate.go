package hookconf

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"

	"github.com/huskrt/husk/internal/vocab"
)

// Problem is a value of a chain that breaks a rule: the key it is about,
// "hook[i].key" with i the hook's index in the chain, and why.
type Problem struct {
	Key string
	Err error
}

// Validate checks a chain built in code (rather than loaded by
// config.Load, which checks it) by the same rules, after WithDefaults. Each
// problem is reported as "hook[i].key: cause"; the error is
// errdefs.ErrInvalidArgument.
func Validate(hooks []Hook) error {
	ps := Problems(hooks)
	if len(ps) == 0 {
		return nil
	}
	errs := make([]error, len(ps))
	for i, p := range ps {
		errs[i] = fmt.Errorf("%s: %w: %w", p.Key, p.Err, errdefs.ErrInvalidArgument)
	}
	return errors.Join(errs...)
}

// Problems returns every problem of the chain: each hook's own, and names
// declared twice.
func Problems(hooks []Hook) []Problem {
	var ps []Problem
	seen := make(map[string]bool, len(hooks))
	for i := range hooks {
		h := &hooks[i]
		for _, p := range h.check() {
			ps = append(ps, Problem{key(i, p.Key), p.Err})
		}
		if seen[h.Name] {
			ps = append(ps, Problem{key(i, "name"), fmt.Errorf("hook %q is declared twice", h.Name)})
		}
		seen[h.Name] = true
	}
	return ps
}

// key is the key of field k of the i-th hook of a chain.
func key(i int, k string) string {
	return "hook[" + strconv.Itoa(i) + "]." + k
}

// check returns the problems of h alone, keyed by field.
func (h *Hook) check() []Problem {
	var ps []Problem
	if err := validName(h.Name); err != nil {
		ps = append(ps, Problem{"name", err})
	}
	if err := AbsClean(h.Module); err != nil {
		ps = append(ps, Problem{"module", err})
	}
	if err := validSHA256(h.SHA256); err != nil {
		ps = append(ps, Problem{"sha256", err})
	}
	if err := validPoints(h.Points); err != nil {
		ps = append(ps, Problem{"points", err})
	}
	switch h.Kind {
	case Change, Check:
	default:
		ps = append(ps, Problem{"kind", fmt.Errorf("unknown kind %q (want %s or %s)", string(h.Kind), Change, Check)})
	}
	switch h.Mode {
	case Enforce, Audit:
	default:
		ps = append(ps, Problem{"mode", fmt.Errorf("unknown mode %q (want %s or %s)", string(h.Mode), Enforce, Audit)})
	}
	switch h.OnError {
	case Deny, Allow:
	default:
		ps = append(ps, Problem{"on_error", fmt.Errorf("unknown on_error %q (want %s or %s)", string(h.OnError), Deny, Allow)})
	}
	if d, err := h.Timeout.Parse(); err != nil {
		ps = append(ps, Problem{"timeout", err})
	} else if d < MinTimeout || d > MaxTimeout {
		ps = append(ps, Problem{"timeout", fmt.Errorf("%s is out of range (want %s to %s)", d, MinTimeout, MaxTimeout)})
	}
	if _, err := h.MemoryLimit.WasmPages(); err != nil {
		ps = append(ps, Problem{"memory_limit", err})
	}
	if err := validGrants(h.Grants); err != nil {
		ps = append(ps, Problem{"grants", err})
	}
	if _, err := json.Marshal(h.Config); err != nil {
		ps = append(ps, Problem{"config", fmt.Errorf("cannot be handed to the module as JSON: %w", err)})
	}
	return ps
}

// validName accepts names that read well in logs and error messages
// without quoting: [a-z0-9][a-z0-9._-]*, at most 64 bytes.
func validName(name string) error {
	if name == "" {
		return ErrEmpty
	}
	ok := len(name) <= 64 && name[0] != '.' && name[0] != '_' && name[0] != '-'
	for _, c := range []byte(name) {
		ok = ok && (c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-')
	}
	if !ok {
		return fmt.Errorf("invalid hook name %q (want up to 64 of a-z, 0-9, '.', '_', '-', starting with a letter or digit)", name)
	}
	return nil
}

func validSHA256(s string) error {
	if s == "" {
		return nil
	}
	if len(s) != 64 || strings.TrimLeft(s, "0123456789abcdef") != "" {
		return fmt.Errorf("invalid sha256 %q (want 64 lower-case hex digits, as sha256sum prints)", s)
	}
	return nil
}

func validPoints(points []string) error {
	if len(points) == 0 {
		return fmt.Errorf("%w: list at least one of %s", ErrEmpty, strings.Join(vocab.Points(), ", "))
	}
	for i, p := range points {
		if !vocab.IsPoint(p) {
			return fmt.Errorf("unknown point %q (want one of %s)", p, strings.Join(vocab.Points(), ", "))
		}
		if slices.Contains(points[:i], p) {
			return fmt.Errorf("point %q is listed twice", p)
		}
	}
	return nil
}

func validGrants(grants []Grant) error {
	for i, g := range grants {
		if !slices.Contains(Grants, g) {
			return fmt.Errorf("unknown grant %q (want %s or %s)", string(g), GrantClock, GrantRandom)
		}
		if slices.Contains(grants[:i], g) {
			return fmt.Errorf("grant %q is listed twice", string(g))
		}
	}
	return nil
}
