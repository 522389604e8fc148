// Package logging carries a *slog.Logger in a context.Context, so that fields
// attached once at an entry point (runtime, namespace, id) follow the call
// everywhere below it. There is no package-global logger.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/lmittmann/tint"
)

type ctxKey struct{}

// WithLogger returns a copy of ctx carrying l.
func WithLogger(ctx context.Context, l *slog.Logger) context.Context {
	return context.WithValue(ctx, ctxKey{}, l)
}

// L returns the logger carried by ctx, or one that discards everything when
// ctx carries none (so library code never needs a nil check).
func L(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(ctxKey{}).(*slog.Logger); ok {
		return l
	}
	return discard
}

var discard = slog.New(slog.DiscardHandler)

// With returns ctx whose logger has the given attributes added.
func With(ctx context.Context, args ...any) context.Context {
	return WithLogger(ctx, L(ctx).With(args...))
}

// ParseLevel turns a config level name (debug, info, warn, error) into a
// slog.Level.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info", "":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("unknown log level %q (want debug, info, warn or error)", s)
}

// NewText returns a logger writing logfmt-style lines to w, for files and
// pipes (the shim's containerd log pipe).
func NewText(w io.Writer, level slog.Leveler) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// NewTerminal returns a logger with coloured, human-oriented output for a
// person at a terminal (huskctl).
func NewTerminal(w io.Writer, level slog.Leveler, color bool) *slog.Logger {
	return slog.New(tint.NewHandler(w, &tint.Options{Level: level, NoColor: !color, TimeFormat: "15:04:05.000"}))
}
