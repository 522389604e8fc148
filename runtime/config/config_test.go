package config

import (
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestPath(t *testing.T) {
	tests := []struct {
		name         string
		option, env  string
		want         string
		wantExplicit bool
	}{
		{name: "default", want: DefaultPath},
		{name: "env", env: "/etc/husk/env.toml", want: "/etc/husk/env.toml", wantExplicit: true},
		{name: "option", option: "/opt/husk.toml", want: "/opt/husk.toml", wantExplicit: true},
		{name: "option wins over env", option: "/opt/husk.toml", env: "/etc/husk/env.toml", want: "/opt/husk.toml", wantExplicit: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(EnvPath, tt.env)
			got, explicit := Path(tt.option)
			if got != tt.want || explicit != tt.wantExplicit {
				t.Errorf("Path(%q) with %s=%q = %q, %v; want %q, %v",
					tt.option, EnvPath, tt.env, got, explicit, tt.want, tt.wantExplicit)
			}
		})
	}
}

func TestTOMLRoundTrips(t *testing.T) {
	changed := Default()
	changed.Runtime.DefaultHandler = HandlerVirt
	changed.Runtime.StateDir = "/var/lib/husk state"
	changed.Log.Level = LevelError
	changed.Linux.SystemdCgroup = true
	changed.Linux.NoPivotRoot = true
	changed.Hooks = []Hook{
		{Name: "a", Module: "/a.wasm", Points: []string{"container.create"}, Kind: HookCheck, Mode: HookEnforce, OnError: HookDeny, Timeout: "100ms", MemoryLimit: "64MiB"},
		{
			Name: "b", Module: "/b c.wasm", SHA256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
			Points: []string{"process.exec", "container.start"}, Kind: HookChange, Mode: HookAudit, OnError: HookAllow,
			Timeout: "1s", MemoryLimit: "8MiB", Grants: []HookGrant{GrantClock},
			Config: map[string]any{"allow": []any{"/bin/sh"}, "n": int64(2), "t": map[string]any{"x": "y"}},
		},
	}

	tests := []struct {
		name string
		c    Config
	}{
		{"defaults", Default()},
		{"every value changed", changed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.c.Sources = []string{"/not/serialized.toml"}
			b, err := tt.c.TOML()
			if err != nil {
				t.Fatalf("TOML: %v", err)
			}
			path := filepath.Join(t.TempDir(), "config.toml")
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := Load(path, true)
			if err != nil {
				t.Fatalf("Load(TOML()): %v\n%s", err, b)
			}
			want := tt.c
			want.Sources = []string{path}
			if !reflect.DeepEqual(*got, want) {
				t.Errorf("Load(TOML()) = %+v, want %+v\n%s", *got, want, b)
			}
		})
	}
}

func TestLevel(t *testing.T) {
	tests := []struct {
		level Level
		want  slog.Level
		valid bool
	}{
		{LevelDebug, slog.LevelDebug, true},
		{LevelInfo, slog.LevelInfo, true},
		{LevelWarn, slog.LevelWarn, true},
		{LevelError, slog.LevelError, true},
		{"verbose", slog.LevelInfo, false},
	}
	for _, tt := range tests {
		if got := tt.level.Level(); got != tt.want {
			t.Errorf("Level(%q).Level() = %v, want %v", tt.level, got, tt.want)
		}
		if err := tt.level.Validate(); (err == nil) != tt.valid {
			t.Errorf("Level(%q).Validate() = %v, want valid %v", tt.level, err, tt.valid)
		}
	}
}

func TestHandlerNameValidate(t *testing.T) {
	for _, h := range []HandlerName{HandlerLinux, HandlerWasm, HandlerVirt} {
		if err := h.Validate(); err != nil {
			t.Errorf("%q: %v", h, err)
		}
	}
	for _, h := range []HandlerName{"", "Linux", "vrit", "runc"} {
		if err := h.Validate(); err == nil {
			t.Errorf("%q: valid, want an error", h)
		}
	}
}
