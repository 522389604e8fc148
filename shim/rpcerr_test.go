package shim

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
)

// TestRPCErrorSaysItOnce: what containerd's client makes of the shim's
// error (errgrpc.ToNative) says each part once and keeps the class.
func TestRPCErrorSaysItOnce(t *testing.T) {
	joined := errors.Join(
		fmt.Errorf("a.toml:2:1: key runtime.default_handler: unknown handler %q: %w", "vrit", errdefs.ErrInvalidArgument),
		fmt.Errorf("a.toml:4:1: key log.colour: unknown key: %w", errdefs.ErrInvalidArgument))
	for _, tt := range []struct {
		name  string
		err   error
		class error
		once  []string
	}{
		{"joined", joined, errdefs.ErrInvalidArgument, []string{`unknown handler "vrit"`, "log.colour"}},
		{"two %w", fmt.Errorf("runtime options: %w: %w", errors.New("bad type"), errdefs.ErrInvalidArgument), errdefs.ErrInvalidArgument, []string{"bad type", "invalid argument"}},
		{"wrapped once", fmt.Errorf("task x: %w", errdefs.ErrNotFound), errdefs.ErrNotFound, []string{"task x", "not found"}},
		{"no class", errors.New("boom"), errdefs.ErrUnknown, []string{"boom"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := errgrpc.ToNative(toRPCError(tt.err))
			if !errors.Is(got, tt.class) {
				t.Errorf("class lost: %v is not %v", got, tt.class)
			}
			for _, w := range tt.once {
				if n := strings.Count(got.Error(), w); n != 1 {
					t.Errorf("%q appears %d times in %q", w, n, got.Error())
				}
			}
		})
	}
	if toRPCError(nil) != nil {
		t.Error("nil became an error")
	}
}

func TestCheckConfigPath(t *testing.T) {
	for _, p := range []string{"", "/etc/husk/config.toml"} {
		if err := checkConfigPath(p); err != nil {
			t.Errorf("%q: %v", p, err)
		}
	}
	for _, p := range []string{"husk.toml", "./x/husk.toml", "../husk.toml"} {
		err := checkConfigPath(p)
		if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "must be an absolute path") {
			t.Errorf("%q: %v", p, err)
		}
	}
}
