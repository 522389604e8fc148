package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/huskrt/husk/policies/build"
	"github.com/huskrt/husk/test/devenv"
)

// demoWasmRef is the demo's Wasm image: examples/wasm/hello, a Go program
// built for WASI, as /hello.wasm.
const demoWasmRef = "husk.local/demo/wasm-hello:latest"

// demoWasm builds the Go hello for WASI into an image and runs it as a
// container: husk sees a Wasm module as the container's program and runs
// it under its Wasm runner.
func demoWasm(ctx context.Context, c *devenv.Containerd, runtime string) error {
	wasm := filepath.Join(c.Dir, "hello.wasm")
	if err := devenv.BuildWasip1("examples/wasm/hello", wasm); err != nil {
		return err
	}
	b, err := os.ReadFile(wasm)
	if err != nil {
		return err
	}
	tarPath := filepath.Join(c.Dir, "wasm-hello.tar")
	files := []devenv.File{{Path: "/hello.wasm", Mode: 0o755, Data: b}}
	if err := devenv.FilesImage(tarPath, demoWasmRef, files, ocispec.ImageConfig{Entrypoint: []string{"/hello.wasm"}}); err != nil {
		return err
	}
	if err := c.ImportImage(ctx, tarPath, demoWasmRef); err != nil {
		return err
	}
	args := []string{"run", "--rm", "--runtime", runtime, demoWasmRef, "husk-demo-wasm", "/hello.wasm", "husk"}
	fmt.Printf("\n$ ctr %s    # a WASI module (Go, GOOS=wasip1) as the container's program\n", strings.Join(args, " "))
	out, stderr, err := c.Ctr(ctx, args...)
	fmt.Print(out)
	if err != nil {
		return fmt.Errorf("ctr run of the Wasm hello: %w: %s", err, stderr)
	}
	if want := "hello, husk, from WebAssembly\n"; out != want {
		return fmt.Errorf("the Wasm hello printed %q, want %q", out, want)
	}
	return nil
}

// demoPolicy builds the built-in deny-privileged policy, gives husk a
// configuration that asks it at container.create, and shows a privileged
// container refused with the policy's reason.
func demoPolicy(ctx context.Context, c *devenv.Containerd, runtime string) error {
	root, err := devenv.RepoRoot()
	if err != nil {
		return err
	}
	module := filepath.Join(c.Dir, "deny-privileged.wasm")
	if err := build.Go(ctx, filepath.Join(root, "policies", "deny-privileged"), module); err != nil {
		return err
	}
	cfg := filepath.Join(c.Dir, "husk-policy.toml")
	toml := fmt.Sprintf("[[hook]]\nname = \"deny-privileged\"\nmodule = %q\npoints = [\"container.create\"]\n", module)
	if err := os.WriteFile(cfg, []byte(toml), 0o644); err != nil {
		return err
	}
	args := []string{"run", "--rm", "--privileged", "--runtime", runtime, "--runtime-config-path", cfg,
		devenv.BusyboxRef, "husk-demo-privileged", "true"}
	fmt.Printf("\n$ ctr %s    # with a Wasm hook policy in husk's configuration\n", strings.Join(args, " "))
	_, stderr, err := c.Ctr(ctx, args...)
	if err == nil {
		return fmt.Errorf("the privileged container ran: the deny-privileged hook did not stop it")
	}
	fmt.Print(stderr)
	if !strings.Contains(stderr, "deny-privileged") {
		return fmt.Errorf("the privileged container failed, but not because of the hook: %s", stderr)
	}
	return nil
}
