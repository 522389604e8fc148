package sdk

import (
	"strings"
)

// In reports whether v is a string in set.
func (v Value) In(set Set) bool {
	if r, ok := v.hostMatch(set, matchEqual); ok {
		return r == 0
	}
	s, ok := v.Str()
	return ok && set.Has(s)
}

// PrefixIn reports whether v is a string that starts with a string in set.
func (v Value) PrefixIn(set Set) bool {
	if r, ok := v.hostMatch(set, matchPrefix); ok {
		return r == 0
	}
	s, ok := v.Str()
	return ok && set.prefixOf(s)
}

// Find returns the index of the first element of array v that is a string
// in set, or -1.
func (v Value) Find(set Set) int {
	if v.Kind() != Array {
		return -1
	}
	if r, ok := v.hostMatch(set, matchEqual); ok {
		return int(r)
	}
	for i, e := range v.Elems() {
		if e.In(set) {
			return i
		}
	}
	return -1
}

// Set is a set of strings for Value.In, Find and PrefixIn: the fast way for
// a policy to check a value against an allow- or deny-list. In a module
// the set also lives in the host, which matches event values against it
// natively. Make sets once (in init or OnInit), not per call.
type Set struct {
	m    map[string]struct{}
	list []string
	id   int32 // the host's id of the set; -1: none
}

// NewSet returns the set of ss.
func NewSet(ss ...string) Set {
	m := make(map[string]struct{}, len(ss))
	for _, s := range ss {
		m[s] = struct{}{}
	}
	return Set{m: m, list: ss, id: hostSet(ss)}
}

// Has reports whether s is in set.
func (set Set) Has(s string) bool {
	_, ok := set.m[s]
	return ok
}

// Len returns the number of strings in set.
func (set Set) Len() int { return len(set.m) }

// prefixOf reports whether s starts with a string of set.
func (set Set) prefixOf(s string) bool {
	for _, p := range set.list {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// Matching modes of the host's husk.json_match.
const (
	matchEqual  = 0
	matchPrefix = 1
)

// hostMatch asks the host to match v against set; ok is false when the
// host cannot (not in a module, v not of the call's input, set not
// registered).
func (v Value) hostMatch(set Set, mode int32) (int32, bool) {
	if !v.live() || !v.doc.input || set.id < 0 {
		return 0, false
	}
	r := hostJSONMatch(uint32(v.off), set.id, mode)
	return r, r >= -1
}
