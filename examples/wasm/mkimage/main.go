// Command mkimage writes a local OCI image (an image-layout tarball for `ctr
// image import`, no registry) holding a Wasm module as its entrypoint, with
// test/devenv's deterministic image writer (the one the tests use): by
// default a rootfs whose one file is the module, with -artifact a Wasm OCI
// artifact whose one layer is the module (application/wasm, platform
// wasip1/wasm), which husk loads from containerd's content store.
//
//	go run ./examples/wasm/mkimage -o hello.tar -ref husk.local/wasm/hello:latest -wasm hello.wasm
//	go run ./examples/wasm/mkimage -artifact -o hello-artifact.tar -ref husk.local/wasm/hello-artifact:latest -wasm hello.wasm
package main

import (
	"flag"
	"fmt"
	"os"
	"path"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/huskrt/husk/test/devenv"
)

func main() {
	out := flag.String("o", "image.tar", "output tarball")
	ref := flag.String("ref", "", "image name (required)")
	wasm := flag.String("wasm", "", "the module (required); it goes to /<its file name>")
	variant := flag.Bool("compat", true, "annotate the manifest module.wasm.image/variant=compat")
	artifact := flag.Bool("artifact", false, "write a Wasm OCI artifact (the module is the image's layer) instead of a rootfs")
	flag.Parse()
	if *ref == "" || *wasm == "" {
		flag.Usage()
		os.Exit(2)
	}
	b, err := os.ReadFile(*wasm)
	if err != nil {
		fail(err)
	}
	dest := "/" + path.Base(*wasm)
	cfg := ocispec.ImageConfig{Entrypoint: []string{dest}, Env: []string{"PATH=/"}, WorkingDir: "/"}
	if *artifact {
		// The layer's title is the name args[0] finds it by.
		err := devenv.ArtifactImage(*out, *ref, devenv.Artifact{
			Config: cfg,
			Layers: []devenv.ArtifactLayer{{MediaType: devenv.MediaTypeWasm, Data: b, Title: path.Base(*wasm)}},
		})
		if err != nil {
			fail(err)
		}
		fmt.Printf("%s: Wasm artifact %s (entrypoint %s)\n", *out, *ref, dest)
		return
	}
	if *variant {
		cfg.Labels = map[string]string{"module.wasm.image/variant": "compat"}
	}
	files := []devenv.File{
		{Path: dest, Mode: 0o755, Data: b},
		{Path: "/tmp", Mode: os.ModeDir | os.ModeSticky | 0o777},
		{Path: "/etc/motd", Data: []byte("This rootfs holds one Wasm module.\n")},
	}
	if err := devenv.FilesImage(*out, *ref, files, cfg); err != nil {
		fail(err)
	}
	fmt.Printf("%s: image %s (entrypoint %s)\n", *out, *ref, dest)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "mkimage:", err)
	os.Exit(1)
}
