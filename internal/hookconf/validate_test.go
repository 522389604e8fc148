package hookconf

import (
	"errors"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
)

// TestValidate: a chain built in code gets Load's rules: a complete hook
// passes; each bad value is named by its key, a name declared twice too,
// and the error is an invalid argument.
func TestValidate(t *testing.T) {
	good := Hook{Name: "a", Module: "/m.wasm", Points: []string{"container.create"}}.WithDefaults()
	if err := Validate([]Hook{good}); err != nil {
		t.Fatalf("a complete hook: %v", err)
	}
	bad := good
	bad.Points = []string{"container.craete"}
	bad.Module = "m.wasm"
	bad.MemoryLimit = "100KiB"
	err := Validate([]Hook{good, bad})
	if !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("err = %v, want an invalid argument", err)
	}
	for _, want := range []string{
		`hook[1].name: hook "a" is declared twice`,
		`hook[1].points: unknown point "container.craete"`,
		`hook[1].module: must be an absolute path`,
		`hook[1].memory_limit: "100KiB" is not a positive multiple`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v\nwant it to say %s", err, want)
		}
	}
	if ps := Problems([]Hook{{}}); len(ps) < 8 {
		t.Errorf("an empty hook has %d problems, want one a key: %v", len(ps), ps)
	}
}
