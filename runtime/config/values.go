package config

import (
	"fmt"
	"log/slog"

	"github.com/huskrt/husk/internal/logging"
)

// HandlerName names a container handler: how husk runs a container.
//
// HandlerName and Level are string types validated after decoding (see
// validate.go) rather than encoding.TextUnmarshalers: go-toml v2.4.3 assigns
// TOML strings straight into string-kinded fields and never calls their
// UnmarshalText, so a validating UnmarshalText would silently not run.
type HandlerName string

// The handlers husk knows.
const (
	HandlerLinux HandlerName = "linux" // Linux containers through libcontainer
	HandlerWasm  HandlerName = "wasm"  // WebAssembly modules
	HandlerVirt  HandlerName = "virt"  // containers in a lightweight VM
)

// Validate reports whether h is one of the handlers husk knows.
func (h HandlerName) Validate() error {
	switch h {
	case HandlerLinux, HandlerWasm, HandlerVirt:
		return nil
	}
	return fmt.Errorf("unknown handler %q (want %s, %s or %s)", string(h), HandlerLinux, HandlerWasm, HandlerVirt)
}

// Level is a log level name, as logging.ParseLevel reads it.
type Level string

// The log levels.
const (
	LevelDebug Level = "debug"
	LevelInfo  Level = "info"
	LevelWarn  Level = "warn"
	LevelError Level = "error"
)

// Validate reports whether l names a log level.
func (l Level) Validate() error {
	_, err := logging.ParseLevel(string(l))
	return err
}

// Level returns l as a slog.Level, making Level a slog.Leveler. A name
// Validate rejects (which a loaded Config never holds) gives slog.LevelInfo.
func (l Level) Level() slog.Level {
	lv, err := logging.ParseLevel(string(l))
	if err != nil {
		return slog.LevelInfo
	}
	return lv
}
