package hooks

import (
	"errors"
	"strings"
)

// pointer is a parsed JSON Pointer (RFC 6901): its reference tokens,
// unescaped. The empty pointer refers to the whole document.
type pointer []string

// parsePointer parses s, which must be "" or start with "/"; "~" must be
// followed by "0" or "1".
func parsePointer(s string) (pointer, error) {
	if s == "" {
		return pointer{}, nil
	}
	if s[0] != '/' {
		return nil, errors.New("a JSON Pointer must be empty or start with /")
	}
	parts := strings.Split(s[1:], "/")
	for i, p := range parts {
		if !strings.Contains(p, "~") {
			continue
		}
		var sb strings.Builder
		for j := 0; j < len(p); j++ {
			if p[j] != '~' {
				sb.WriteByte(p[j])
				continue
			}
			j++
			switch {
			case j < len(p) && p[j] == '0':
				sb.WriteByte('~')
			case j < len(p) && p[j] == '1':
				sb.WriteByte('/')
			default:
				return nil, errors.New("bad escape in JSON Pointer: ~ must be followed by 0 or 1")
			}
		}
		parts[i] = sb.String()
	}
	return parts, nil
}

// String returns p in RFC 6901 form.
func (p pointer) String() string {
	var sb strings.Builder
	for _, t := range p {
		sb.WriteByte('/')
		sb.WriteString(escapeToken(t))
	}
	return sb.String()
}

// tokenEscaper escapes a reference token. (Building a Replacer on every
// call cost a patched call ~100 µs: checkStrict named every member.)
var tokenEscaper = strings.NewReplacer("~", "~0", "/", "~1")

// escapeToken returns t escaped for a JSON Pointer.
func escapeToken(t string) string {
	if !strings.ContainsAny(t, "~/") {
		return t
	}
	return tokenEscaper.Replace(t)
}

// hasPrefix reports whether q is p or a descendant of it.
func (p pointer) hasPrefix(q pointer) bool {
	if len(p) < len(q) {
		return false
	}
	for i := range q {
		if p[i] != q[i] {
			return false
		}
	}
	return true
}

// mustPointer parses a pointer written in husk's source.
func mustPointer(s string) pointer {
	p, err := parsePointer(s)
	if err != nil {
		panic("hooks: bad pointer " + s + ": " + err.Error())
	}
	return p
}
