package sdk

import (
	"unicode/utf16"
	"unicode/utf8"
)

// equal reports whether b and s hold the same bytes. Up to 32 bytes it
// compares without a loop (the Go runtime's comparison loops byte by byte
// in WebAssembly).
func equal(b []byte, s string) bool {
	n := len(s)
	switch {
	case len(b) != n:
		return false
	case n <= 8:
		return eq8(b, s)
	case n <= 16:
		return eq8(b, s[:8]) && eq8(b[8:], s[8:])
	case n <= 24:
		return eq8(b, s[:8]) && eq8(b[8:], s[8:16]) && eq8(b[16:], s[16:])
	case n <= 32:
		return eq8(b, s[:8]) && eq8(b[8:], s[8:16]) && eq8(b[16:], s[16:24]) && eq8(b[24:], s[24:])
	}
	return string(b) == s
}

// eq8 reports whether b starts with s, which is at most 8 bytes long.
func eq8(b []byte, s string) bool {
	switch len(s) {
	case 0:
		return true
	case 1:
		return b[0] == s[0]
	case 2:
		return b[0] == s[0] && b[1] == s[1]
	case 3:
		return b[0] == s[0] && b[1] == s[1] && b[2] == s[2]
	case 4:
		return b[0] == s[0] && b[1] == s[1] && b[2] == s[2] && b[3] == s[3]
	case 5:
		return b[0] == s[0] && b[1] == s[1] && b[2] == s[2] && b[3] == s[3] && b[4] == s[4]
	case 6:
		return b[0] == s[0] && b[1] == s[1] && b[2] == s[2] && b[3] == s[3] && b[4] == s[4] && b[5] == s[5]
	case 7:
		return b[0] == s[0] && b[1] == s[1] && b[2] == s[2] && b[3] == s[3] && b[4] == s[4] && b[5] == s[5] && b[6] == s[6]
	}
	return b[0] == s[0] && b[1] == s[1] && b[2] == s[2] && b[3] == s[3] && b[4] == s[4] && b[5] == s[5] && b[6] == s[6] && b[7] == s[7]
}

// unquote decodes the body of a JSON string literal (without its quotes).
// Like encoding/json, it replaces invalid UTF-8 and lone surrogates with
// U+FFFD. Control characters are invalid in JSON strings: not ok.
func unquote(body []byte) (string, bool) {
	out := make([]byte, 0, len(body))
	for i := 0; i < len(body); i++ {
		c := body[i]
		if c < 0x20 {
			return "", false
		}
		if c != '\\' {
			out = append(out, c)
			continue
		}
		i++
		if i >= len(body) {
			return "", false
		}
		switch body[i] {
		case '"', '\\', '/':
			out = append(out, body[i])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, n := hexRune(body[i+1:])
			if n == 0 {
				return "", false
			}
			i += n
			if utf16.IsSurrogate(r) {
				r2, n2 := rune(-1), 0
				if len(body) > i+2 && body[i+1] == '\\' && body[i+2] == 'u' {
					r2, n2 = hexRune(body[i+3:])
				}
				if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
					r, i = d, i+2+n2
				} else {
					r = utf8.RuneError
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			return "", false
		}
	}
	if !utf8.Valid(out) {
		return replaceInvalid(out), true
	}
	return string(out), true
}

// replaceInvalid returns b with each byte that is not part of valid UTF-8
// replaced by U+FFFD, as encoding/json does.
func replaceInvalid(b []byte) string {
	out := make([]byte, 0, len(b)+8)
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n == 1 {
			out = utf8.AppendRune(out, utf8.RuneError)
		} else {
			out = append(out, b[:n]...)
		}
		b = b[n:]
	}
	return string(out)
}

// hexRune reads the 4 hex digits of a \u escape; n is 4, or 0 if invalid.
func hexRune(b []byte) (r rune, n int) {
	if len(b) < 4 {
		return 0, 0
	}
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, 0
		}
		r = r<<4 | rune(c)
	}
	return r, 4
}
