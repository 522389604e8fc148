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
	idx := indexKeys(data)
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
		keys = append(keys, prefix+name)
	}
	return keys
}
