package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"
)

// hookKey is the key of a problem with field key of the i-th hook of the
// chain: "hook[i].key". localHookKeys turns i into the index within the file
// that declared the hook, which is what Error shows and what locate finds.
func hookKey(i int, key string) string {
	return "hook[" + strconv.Itoa(i) + "]." + key
}

// ValidateHooks checks a chain built in code (rather than loaded, which
// checks it) by the same rules as Load, after WithDefaults. Each problem is
// reported as "hook[i].key: cause"; the error is errdefs.ErrInvalidArgument.
func ValidateHooks(hooks []Hook) error {
	ps := validateHooks(hooks)
	if len(ps) == 0 {
		return nil
	}
	errs := make([]error, len(ps))
	for i, p := range ps {
		errs[i] = fmt.Errorf("%s: %w: %w", p.key, p.err, errdefs.ErrInvalidArgument)
	}
	return errors.Join(errs...)
}

// validateHooks checks every hook of the chain.
func validateHooks(hooks []Hook) []problem {
	var ps []problem
	seen := make(map[string]bool, len(hooks))
	for i := range hooks {
		h := &hooks[i]
		for _, p := range h.validate() {
			ps = append(ps, problem{hookKey(i, p.key), p.err})
		}
		if seen[h.Name] {
			ps = append(ps, problem{hookKey(i, "name"), fmt.Errorf("hook %q is declared twice", h.Name)})
		}
		seen[h.Name] = true
	}
	return ps
}

func (h *Hook) validate() []problem {
	var ps []problem
	if err := validHookName(h.Name); err != nil {
		ps = append(ps, problem{"name", err})
	}
	if err := absClean(h.Module); err != nil {
		ps = append(ps, problem{"module", err})
	}
	if err := validSHA256(h.SHA256); err != nil {
		ps = append(ps, problem{"sha256", err})
	}
	if err := validPoints(h.Points); err != nil {
		ps = append(ps, problem{"points", err})
	}
	switch h.Kind {
	case HookChange, HookCheck:
	default:
		ps = append(ps, problem{"kind", fmt.Errorf("unknown kind %q (want %s or %s)", string(h.Kind), HookChange, HookCheck)})
	}
	switch h.Mode {
	case HookEnforce, HookAudit:
	default:
		ps = append(ps, problem{"mode", fmt.Errorf("unknown mode %q (want %s or %s)", string(h.Mode), HookEnforce, HookAudit)})
	}
	switch h.OnError {
	case HookDeny, HookAllow:
	default:
		ps = append(ps, problem{"on_error", fmt.Errorf("unknown on_error %q (want %s or %s)", string(h.OnError), HookDeny, HookAllow)})
	}
	if d, err := h.Timeout.Parse(); err != nil {
		ps = append(ps, problem{"timeout", err})
	} else if d < MinHookTimeout || d > MaxHookTimeout {
		ps = append(ps, problem{"timeout", fmt.Errorf("%s is out of range (want %s to %s)", d, MinHookTimeout, MaxHookTimeout)})
	}
	if _, err := h.MemoryLimit.WasmPages(); err != nil {
		ps = append(ps, problem{"memory_limit", err})
	}
	if err := validGrants(h.Grants); err != nil {
		ps = append(ps, problem{"grants", err})
	}
	if _, err := json.Marshal(h.Config); err != nil {
		ps = append(ps, problem{"config", fmt.Errorf("cannot be handed to the module as JSON: %w", err)})
	}
	return ps
}

// validHookName accepts names that read well in logs and error messages
// without quoting: [a-z0-9][a-z0-9._-]*, at most 64 bytes.
func validHookName(name string) error {
	if name == "" {
		return errEmpty
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
		return fmt.Errorf("%w: list at least one of %s", errEmpty, strings.Join(HookPoints, ", "))
	}
	for i, p := range points {
		if !slices.Contains(HookPoints, p) {
			return fmt.Errorf("unknown point %q (want one of %s)", p, strings.Join(HookPoints, ", "))
		}
		if slices.Contains(points[:i], p) {
			return fmt.Errorf("point %q is listed twice", p)
		}
	}
	return nil
}

func validGrants(grants []HookGrant) error {
	for i, g := range grants {
		if !slices.Contains(HookGrants, g) {
			return fmt.Errorf("unknown grant %q (want %s or %s)", string(g), GrantClock, GrantRandom)
		}
		if slices.Contains(grants[:i], g) {
			return fmt.Errorf("grant %q is listed twice", string(g))
		}
	}
	return nil
}

// localHookKeys rewrites the hook index of problem keys from the index in
// the chain to the index among the [[hook]] entries of the file just
// applied, whose first hook is the chain's hook first. Problems with hooks
// before first cannot come from this file and keep their key.
func localHookKeys(ps []problem, first int) []problem {
	for i := range ps {
		rest, ok := strings.CutPrefix(ps[i].key, "hook[")
		if !ok {
			continue
		}
		num, tail, ok := strings.Cut(rest, "]")
		n, err := strconv.Atoi(num)
		if !ok || err != nil || n < first {
			continue
		}
		ps[i].key = "hook[" + strconv.Itoa(n-first) + "]" + tail
	}
	return ps
}

// locate returns where key is written in the document idx indexes. Keys of
// the form "hook[i].k" name key k of the i-th [[hook]] table of the
// document (0-based); when that table does not write k, its header is
// returned. Other keys are looked up as find does.
func (idx keyIndex) locate(key string) (keyPos, bool) {
	rest, ok := strings.CutPrefix(key, "hook[")
	if !ok {
		return idx.find(key)
	}
	num, tail, ok := strings.Cut(rest, "].")
	n, err := strconv.Atoi(num)
	if !ok || err != nil {
		return idx.find(key)
	}
	want := "hook." + tail
	header := -1
	for i, p := range idx {
		isHeader := p.key == "hook" && p.vline == 0
		switch {
		case isHeader && header >= 0:
			return idx[header], true // left table n without finding the key
		case isHeader && n == 0:
			header = i
		case isHeader:
			n--
		case header >= 0 && p.key == want:
			return p, true
		}
	}
	if header >= 0 {
		return idx[header], true
	}
	return idx.find("hook")
}
