// Package textesc makes text from an untrusted source (a hook module, a
// guest) safe to print on one line of a log or a terminal. It has no
// dependencies, so that packages which only report such text (the hook
// chain's decisions and patches) need not link the Wasm host.
package textesc

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Escape returns s made safe to print on one line: invalid UTF-8 becomes
// U+FFFD, and every character that is not printable (newlines, escape
// sequences' ESC, other C0 and C1 controls, bidirectional overrides, line
// separators) is written as its Go escape (\n, \x1b, \u202e). Whoever chose
// the text can then neither forge log lines nor drive the terminal of
// whoever reads them. Text without such characters is returned as is.
func Escape(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || !printable(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		if printable(r) {
			b.WriteRune(r)
			continue
		}
		q := strconv.QuoteRuneToASCII(r) // '\n', '\x1b', '\u202e'
		b.WriteString(q[1 : len(q)-1])
	}
	return b.String()
}

// printable reports whether r may be printed as itself: a letter, mark,
// number, punctuation, symbol or the ASCII space (unicode.IsPrint), which
// leaves out controls, format characters (bidirectional overrides) and
// line and paragraph separators. U+FFFD is a symbol.
func printable(r rune) bool { return unicode.IsPrint(r) }
