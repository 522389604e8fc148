package config

import (
	"strconv"
	"strings"

	"github.com/huskrt/husk/internal/hookconf"
)

// ValidateHooks checks a chain built in code (rather than loaded, which
// checks it) by the same rules as Load, after WithDefaults (it is
// hookconf.Validate).
func ValidateHooks(hooks []Hook) error { return hookconf.Validate(hooks) }

// validateHooks checks every hook of the chain; keys are "hook[i].key".
func validateHooks(hooks []Hook) []problem {
	var ps []problem
	for _, p := range hookconf.Problems(hooks) {
		ps = append(ps, problem{p.Key, p.Err})
	}
	return ps
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
