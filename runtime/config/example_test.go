package config

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

const examplePath = "../../examples/config.toml"

// TestExampleIsDefaultAndStrict checks that examples/config.toml decodes
// strictly and sets every key to its default.
func TestExampleIsDefaultAndStrict(t *testing.T) {
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	c := Default()
	if err := c.apply(examplePath, data); err != nil {
		t.Fatalf("example does not load: %v", err)
	}
	want := Default()
	want.Sources = []string{examplePath}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("example sets %+v, want the defaults %+v", c, want)
	}
}

// TestExampleHasEveryKey keeps examples/config.toml from falling behind
// Config: every key of the schema must be written in it.
func TestExampleHasEveryKey(t *testing.T) {
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	// Keys without a default (the [[hook]] table) are documented in
	// commented-out examples.
	idx := indexKeys(uncommentExamples(data))
	keys := schemaKeys(reflect.TypeFor[Config](), "")
	if len(keys) < 5 {
		t.Fatalf("schemaKeys found only %v", keys)
	}
	for _, k := range keys {
		if _, ok := idx.find(k); !ok {
			t.Errorf("%s: key %s is not documented", examplePath, k)
		}
	}
}

// schemaKeys returns the dotted keys of the leaf fields of struct type t,
// following toml tags (and skipping fields tagged "-").
func schemaKeys(t reflect.Type, prefix string) []string {
	var keys []string
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if f.Type.Kind() == reflect.Struct {
			keys = append(keys, schemaKeys(f.Type, prefix+name+".")...)
			continue
		}
		if f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct {
			keys = append(keys, schemaKeys(f.Type.Elem(), prefix+name+".")...)
			continue
		}
		keys = append(keys, prefix+name)
	}
	return keys
}

// TestExampleHooksLoad checks that the commented-out [[hook]] example is
// valid once uncommented, so that an operator can copy it as it is.
func TestExampleHooksLoad(t *testing.T) {
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	c := Default()
	if err := c.apply(examplePath, uncommentExamples(data)); err != nil {
		t.Fatalf("example with its [[hook]] uncommented does not load: %v", err)
	}
	if len(c.Hooks) != 1 {
		t.Fatalf("example declares %d hooks, want 1", len(c.Hooks))
	}
	// The example sets each key to its default, where it has one.
	h := c.Hooks[0]
	d := Hook{Name: h.Name, Module: h.Module, Points: h.Points, Config: h.Config, Grants: h.Grants}.WithDefaults()
	if !reflect.DeepEqual(h, d) {
		t.Errorf("example hook %+v, want the defaults %+v", h, d)
	}
	if len(h.Config) == 0 {
		t.Error("example hook has no config table")
	}
}

// uncommentExamples turns the commented-out examples of data back into TOML:
// a line is an example when it starts with "#" followed by neither a space
// nor another "#" (prose comments start with "# ").
func uncommentExamples(data []byte) []byte {
	lines := strings.SplitAfter(string(data), "\n")
	for i, l := range lines {
		if len(l) > 1 && l[0] == '#' && l[1] != ' ' && l[1] != '#' && l[1] != '\n' {
			lines[i] = l[1:]
		}
	}
	return []byte(strings.Join(lines, ""))
}
