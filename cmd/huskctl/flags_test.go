package main

import (
	"flag"
	"io"
	"slices"
	"testing"
)

func TestParseInterspersed(t *testing.T) {
	for _, tt := range []struct {
		args []string
		out  string
		pos  []string
	}{
		{[]string{"./dir", "-o", "x.wasm"}, "x.wasm", []string{"./dir"}},
		{[]string{"-o", "x.wasm", "./dir"}, "x.wasm", []string{"./dir"}},
		{[]string{"a", "-o=y", "b"}, "y", []string{"a", "b"}},
		{[]string{"a", "--", "-o", "b"}, "", []string{"a", "-o", "b"}},
		{nil, "", nil},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		out := fs.String("o", "", "")
		pos, err := parseInterspersed(fs, tt.args)
		if err != nil {
			t.Fatalf("%q: %v", tt.args, err)
		}
		if *out != tt.out || !slices.Equal(pos, tt.pos) {
			t.Errorf("%q: -o %q, positional %q; want %q, %q", tt.args, *out, pos, tt.out, tt.pos)
		}
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if _, err := parseInterspersed(fs, []string{"a", "--nope"}); err == nil {
		t.Error("an unknown flag after a positional argument was accepted")
	}
}
