package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/huskrt/husk/policies/build"
	"github.com/huskrt/husk/runtime/config"
)

// TestConfigCheckLoadsWhatTheShimWould: huskctl config check finds what
// config.Load cannot and the shim would find only at a container's first
// hook call: a missing module, a file that is no module, a wrong sha256
// pin, a typo inside [hook.config] (the module refuses it at husk_init),
// and a default handler this host cannot run (#13 item 3).
func TestConfigCheckLoadsWhatTheShimWould(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a policy with the Go toolchain")
	}
	dir := t.TempDir()
	module := filepath.Join(dir, "allowed-images.wasm")
	if err := build.Go(context.Background(), filepath.Join("..", "..", "policies", "allowed-images"), module); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(module)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	pin := hex.EncodeToString(sum[:])
	garbage := writeTemp(t, dir, "garbage.wasm", []byte("#!/bin/sh\necho not a module\n"))

	hook := func(module, sha, cfg string) string {
		s := fmt.Sprintf("[[hook]]\nname = \"images\"\nmodule = %q\npoints = [\"container.create\"]\n", module)
		if sha != "" {
			s += fmt.Sprintf("sha256 = %q\n", sha)
		}
		return s + "[hook.config]\n" + cfg + "\n"
	}
	good := `images = ["husk.local/"]`
	for _, tt := range []struct {
		name, toml string
		want       []string // in the error; none: the check passes
	}{
		{"good", hook(module, pin, good), nil},
		{"missing module", hook(filepath.Join(dir, "nope.wasm"), "", good), []string{`hook "images"`, "nope.wasm", "no such file"}},
		{"garbage module", hook(garbage, "", good), []string{`hook "images"`, "garbage.wasm"}},
		{"wrong sha256 pin", hook(module, strings.Repeat("0", 64), good), []string{`hook "images"`, "sha256"}},
		{"typo in hook.config", hook(module, pin, `imagez = ["husk.local/"]`), []string{`hook "images"`, "unknown key imagez"}},
		{"virt without a guest image", "[runtime]\ndefault_handler = \"virt\"\n[virt]\nhypervisor = \"qemu\"\nguest_image = \"" + filepath.Join(dir, "no-guest") + "\"\n",
			[]string{`default_handler = "virt" cannot run on this host`, "guest image"}},
		{"virt on husk's VMM in a build without it", "[runtime]\ndefault_handler = \"virt\"\n[virt]\nhypervisor = \"builtin\"\n",
			[]string{`default_handler = "virt" cannot run on this host`, "husk's VMM is not in this build"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if strings.Contains(tt.name, "build without it") && withVMM {
				t.Skip("this build has husk's VMM (go test -tags 'seccomp husk_novmm' runs this case)")
			}
			path := writeTemp(t, t.TempDir(), "config.toml", []byte(tt.toml))
			c, err := config.Load(path, true)
			if err != nil {
				t.Fatalf("config.Load already refuses it: %v", err)
			}
			var out strings.Builder
			err = checkConfig(context.Background(), &out, c)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("check failed: %v\n%s", err, out.String())
				}
				if !strings.Contains(out.String(), "sha256 pin matches, its config accepted") {
					t.Errorf("output:\n%s", out.String())
				}
				return
			}
			if err == nil {
				t.Fatalf("check passed:\n%s", out.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q: %v", w, err)
				}
			}
		})
	}
}
