package shim

import (
	"errors"
	"strings"
	"testing"

	"github.com/containerd/containerd/api/types/runc/options"
	"github.com/containerd/containerd/api/types/runtimeoptions/v1"
	"github.com/containerd/typeurl/v2"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/huskrt/husk/runtime/config"
)

func anyOf(t *testing.T, m proto.Message) *anypb.Any {
	t.Helper()
	a, err := typeurl.MarshalAnyToProto(m)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestConfigFromOptions(t *testing.T) {
	// Only the options may configure: no $HUSK_CONFIG.
	t.Setenv(config.EnvPath, "")

	inline := &runtimeoptions.Options{ConfigBody: []byte("[runtime]\ndefault_handler = \"wasm\"\n")}
	cfg, runcOpts, err := configFromOptions(anyOf(t, inline))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Runtime.DefaultHandler != config.HandlerWasm || runcOpts != nil {
		t.Errorf("inline ConfigBody: handler %q, runc options %v; want wasm, none", cfg.Runtime.DefaultHandler, runcOpts)
	}
	if cfg.Sources[0] != inlineConfigName {
		t.Errorf("Sources = %q, want the inline body first", cfg.Sources)
	}

	bad := &runtimeoptions.Options{ConfigBody: []byte("[runtime]\nSystemdCgroup = true\n")}
	_, _, err = configFromOptions(anyOf(t, bad))
	var ce *config.Error
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "ConfigBody") || ce.Key != "runtime.SystemdCgroup" {
		t.Errorf("unknown key in ConfigBody: error %v, want one naming ConfigBody and the key", err)
	}

	// A ConfigPath wins over the body, and a missing one is an error.
	both := &runtimeoptions.Options{ConfigPath: t.TempDir() + "/none.toml", ConfigBody: inline.ConfigBody}
	if _, _, err := configFromOptions(anyOf(t, both)); err == nil || !strings.Contains(err.Error(), "none.toml") {
		t.Errorf("ConfigPath and ConfigBody: error %v, want the missing ConfigPath", err)
	}

	runc := &options.Options{SystemdCgroup: true}
	_, runcOpts, err = configFromOptions(anyOf(t, runc))
	if err != nil || runcOpts == nil || !runcOpts.SystemdCgroup {
		t.Errorf("runc options: %v, %v; want them passed back", runcOpts, err)
	}
}
