package wasmhost

import "github.com/huskrt/husk/internal/textesc"

// EscapeText returns text a module chose (a husk.log line, a deny reason,
// an init error, an import's name) made safe to print on one line of a log
// or a terminal (textesc.Escape): a module can neither forge log lines nor
// drive the terminal of whoever reads them.
func EscapeText(s string) string { return textesc.Escape(s) }
