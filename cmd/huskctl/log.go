package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/huskrt/husk/internal/logging"
	"golang.org/x/term"
)

// withLogger attaches huskctl's terminal logger; HUSK_LOG_LEVEL sets its level.
func withLogger(ctx context.Context) context.Context {
	level := slog.LevelInfo
	if s := os.Getenv("HUSK_LOG_LEVEL"); s != "" {
		if l, err := logging.ParseLevel(s); err == nil {
			level = l
		}
	}
	color := term.IsTerminal(int(os.Stderr.Fd()))
	return logging.WithLogger(ctx, logging.NewTerminal(os.Stderr, level, color))
}
