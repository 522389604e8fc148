package config

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/huskrt/husk/internal/logging"
	"github.com/huskrt/husk/internal/vocab"
)

// HandlerName names a container handler: how husk runs a container.
//
// HandlerName and Level are string types validated after decoding (see
// validate.go) rather than encoding.TextUnmarshalers: go-toml v2.4.3 assigns
// TOML strings straight into string-kinded fields and never calls their
// UnmarshalText, so a validating UnmarshalText would silently not run.
type HandlerName string

// The handlers husk knows (vocab lists them).
const (
	HandlerLinux HandlerName = vocab.Linux
	HandlerWasm  HandlerName = vocab.Wasm
	HandlerVirt  HandlerName = vocab.Virt
)

// Validate reports whether h is one of the handlers husk knows.
func (h HandlerName) Validate() error {
	if vocab.IsHandler(string(h)) {
		return nil
	}
	return fmt.Errorf("unknown handler %q (want %s)", string(h), orList(vocab.Handlers()))
}

// orList writes names as "a, b or c".
func orList(names []string) string {
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
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
