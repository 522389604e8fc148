package wasmhost

import (
	"encoding/json"
	"strconv"
	"strings"
)

// query is the JSON input of one call (the event, or the config during
// husk_init) and what the query functions need of it, computed lazily and
// natively: a guest's own code pays ~30 ns per branch under the
// termination checks, the host's nothing.
type query struct {
	input   []byte   // nil outside husk_decide and husk_init
	index   []uint32 // structural index of input; nil until needed
	scratch []uint32 // index's storage, reused call after call
}

// reset makes input the JSON input of the call starting (nil: none).
func (q *query) reset(input []byte) {
	q.input, q.index = input, nil
}

// indexed returns the structural index of the input, computing it once.
func (q *query) indexed() []uint32 {
	if q.index == nil {
		if cap(q.scratch) < len(q.input) {
			q.scratch = make([]uint32, len(q.input))
		}
		q.index = q.scratch[:len(q.input)]
		clear(q.index)
		jsonIndex(q.input, q.index)
	}
	return q.index
}

// end returns the end of the value starting at i, or -1.
func (q *query) end(i int) int {
	q.indexed()
	if i < 0 || i >= len(q.index) {
		return -1
	}
	e := int(q.index[i] & indexEnd)
	if e <= i {
		return -1
	}
	return e
}

// plain reports whether the string starting at i is its content as it
// stands.
func (q *query) plain(i int) bool { return q.index[i]&IndexDecode == 0 }

// space returns the first offset at or after i that is not JSON space.
func (q *query) space(i int) int {
	for i < len(q.input) && (q.input[i] == ' ' || q.input[i] == '\n' || q.input[i] == '\t' || q.input[i] == '\r') {
		i++
	}
	return i
}

// get returns the extent of the value at JSON Pointer ptr (RFC 6901)
// relative to the value starting at base, or ok false.
func (q *query) get(base int, ptr string) (start, end int, ok bool) {
	start, end = base, q.end(base)
	if end < 0 || (ptr != "" && ptr[0] != '/') {
		return 0, 0, false
	}
	for ptr != "" {
		tok := ptr[1:]
		if i := strings.IndexByte(tok, '/'); i >= 0 {
			tok, ptr = tok[:i], tok[i:]
		} else {
			ptr = ""
		}
		if strings.Contains(tok, "~") {
			tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		}
		found := false
		switch q.input[start] {
		case '{':
			q.members(start, end, func(k, ks, v, ve int) bool {
				if q.stringIs(k, ks, tok) {
					start, end, found = v, ve, true
					return false
				}
				return true
			})
		case '[':
			n, err := strconv.Atoi(tok)
			if err != nil || n < 0 || (len(tok) > 1 && tok[0] == '0') {
				return 0, 0, false
			}
			q.elems(start, end, func(i, e, ee int) bool {
				if i == n {
					start, end, found = e, ee, true
					return false
				}
				return true
			})
		}
		if !found {
			return 0, 0, false
		}
	}
	return start, end, true
}

// members calls f with the name and value extents of each member of the
// object at [start, end), until f returns false.
func (q *query) members(start, end int, f func(k, ke, v, ve int) bool) {
	i := q.space(start + 1)
	for i < end-1 && q.input[i] == '"' {
		ke := q.end(i)
		if ke < 0 {
			return
		}
		j := q.space(ke)
		if j >= end || q.input[j] != ':' {
			return
		}
		v := q.space(j + 1)
		ve := q.end(v)
		if ve < 0 || ve > end || !f(i, ke, v, ve) {
			return
		}
		i = q.space(ve)
		if i >= end || q.input[i] != ',' {
			return
		}
		i = q.space(i + 1)
	}
}

// elems calls f with the index and extent of each element of the array at
// [start, end), until f returns false.
func (q *query) elems(start, end int, f func(n, e, ee int) bool) {
	i := q.space(start + 1)
	for n := 0; i < end-1; n++ {
		ee := q.end(i)
		if ee < 0 || ee > end || !f(n, i, ee) {
			return
		}
		i = q.space(ee)
		if i >= end || q.input[i] != ',' {
			return
		}
		i = q.space(i + 1)
	}
}

// str returns the content of the string at [start, end).
func (q *query) str(start, end int) (string, bool) {
	if q.input[start] != '"' {
		return "", false
	}
	if q.plain(start) {
		return string(q.input[start+1 : end-1]), true
	}
	var s string
	if json.Unmarshal(q.input[start:end], &s) != nil {
		return "", false
	}
	return s, true
}

// stringIs reports whether the string at [start, end) is s.
func (q *query) stringIs(start, end int, s string) bool {
	if q.input[start] != '"' {
		return false
	}
	if q.plain(start) {
		return string(q.input[start+1:end-1]) == s
	}
	got, ok := q.str(start, end)
	return ok && got == s
}

// stringSet is a set of strings a module registered with husk.set_new.
type stringSet struct {
	members  map[string]struct{}
	prefixes []string // the members, for prefix matching
	cost     int      // bytes charged to maxSetBytes
}

// Limits on the sets of one instance.
const (
	maxSets       = 256
	maxSetMembers = 1 << 14
	// maxSetBytes bounds the host memory an instance's sets hold, all
	// together: their JSON text plus setMemberCost per member (the map
	// entry and the string headers). Eight sets of a 32 MiB string cost
	// 291 MiB of host memory, beyond the module's own limit, before this.
	maxSetBytes   = 4 << 20
	setMemberCost = 64
)

// newSet parses a JSON array of strings.
func newSet(b []byte) (*stringSet, bool) {
	var ss []string
	if json.Unmarshal(b, &ss) != nil || len(ss) > maxSetMembers {
		return nil, false
	}
	set := &stringSet{members: make(map[string]struct{}, len(ss)), prefixes: ss, cost: len(b) + setMemberCost*len(ss)}
	for _, s := range ss {
		set.members[s] = struct{}{}
	}
	return set, true
}

// Matching modes of husk.json_match.
const (
	matchEqual  = 0 // the string is a member of the set
	matchPrefix = 1 // the string starts with a member of the set
)

// matches reports whether the string at [start, end) matches set.
func (q *query) matches(start, end int, set *stringSet, mode int32) bool {
	if q.input[start] != '"' {
		return false
	}
	if mode == matchEqual && q.plain(start) {
		_, in := set.members[string(q.input[start+1:end-1])] // no allocation
		return in
	}
	s, ok := q.str(start, end)
	if !ok {
		return false
	}
	if mode == matchEqual {
		_, in := set.members[s]
		return in
	}
	for _, p := range set.prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// match implements husk.json_match for the value at start: a string gives
// 0 when it matches and -1 otherwise; an array gives the index of its
// first string element that matches, or -1.
func (q *query) match(start int, set *stringSet, mode int32) int32 {
	end := q.end(start)
	if end < 0 {
		return matchNoValue
	}
	switch q.input[start] {
	case '"':
		if q.matches(start, end, set, mode) {
			return 0
		}
	case '[':
		found := int32(-1)
		q.elems(start, end, func(n, e, ee int) bool {
			if q.matches(e, ee, set, mode) {
				found = int32(n)
				return false
			}
			return true
		})
		return found
	}
	return -1
}

// matchNoValue is husk.json_match's result when no value starts at the
// offset, or the set or mode is unknown.
const matchNoValue = -2
