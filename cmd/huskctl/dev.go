package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/huskrt/husk/internal/logging"
	"github.com/huskrt/husk/runtime/config"
	"github.com/huskrt/husk/test/devenv"
)

const devUsage = `usage: huskctl dev <command> [flags]

  containerd  run a private containerd with the busybox image until Ctrl-C
              [--dir D] [--tools DIR] [--shim-dir DIR] [--ref R]
  demo        run busybox under husk in a throwaway containerd
              [--tools DIR] [--shim-dir DIR] [--runtime R]
  image       write the busybox OCI image tarball  --out FILE [--ref R]
  rootfs      write the busybox root filesystem    --out DIR

--tools holds containerd, ctr and containerd-shim-runc-v2 (default
<repo>/.tools/bin, filled by hack/install-tools.sh); --shim-dir holds
containerd-shim-husk-v2 (default <repo>/bin).
`

// huskRuntime is the runtime name containerd maps to containerd-shim-husk-v2.
const huskRuntime = "io.containerd.husk.v2"

// runDev implements "huskctl dev containerd|demo|image|rootfs".
func runDev(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, devUsage)
		return errors.New("missing subcommand")
	}
	sub, args := args[0], args[1:]
	run, ok := map[string]func(context.Context, []string) error{
		"containerd": devContainerd,
		"demo":       devDemo,
		"image":      devImage,
		"rootfs":     devRootfs,
	}[sub]
	if !ok {
		fmt.Fprint(os.Stderr, devUsage)
		if sub == "-h" || sub == "-help" || sub == "--help" || sub == "help" {
			return nil
		}
		return fmt.Errorf("unknown subcommand %q", sub)
	}
	return run(ctx, args)
}

// parseFlags parses a subcommand's flags; done is true after -h.
func parseFlags(fs *flag.FlagSet, args []string) (done bool, err error) {
	fs.Usage = func() { fmt.Fprint(fs.Output(), devUsage) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return true, nil
		}
		return true, err
	}
	if fs.NArg() > 0 {
		return true, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return false, nil
}

// benchFlags are the flags of the subcommands that start containerd.
type benchFlags struct{ tools, shimDir string }

func (b *benchFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&b.tools, "tools", "", "dir with containerd, ctr, containerd-shim-runc-v2 (default <repo>/.tools/bin)")
	fs.StringVar(&b.shimDir, "shim-dir", "", "dir with containerd-shim-husk-v2 (default <repo>/bin)")
}

// options resolves the defaults, so that they can be shown and checked.
func (b *benchFlags) options() (devenv.Options, error) {
	o := devenv.Options{ToolsBin: b.tools, ShimDir: b.shimDir}
	if o.ToolsBin == "" || o.ShimDir == "" {
		root, err := devenv.RepoRoot()
		if err != nil {
			return o, fmt.Errorf("%w; run from the repository or pass --tools and --shim-dir", err)
		}
		if o.ToolsBin == "" {
			o.ToolsBin = filepath.Join(root, ".tools", "bin")
		}
		if o.ShimDir == "" {
			o.ShimDir = filepath.Join(root, "bin")
		}
	}
	return o, nil
}

// startBench starts containerd and imports the busybox image as ref. The
// caller must Stop the result.
func startBench(ctx context.Context, o devenv.Options, ref string) (*devenv.Containerd, error) {
	log := logging.L(ctx)
	t0 := time.Now()
	c, err := devenv.Start(ctx, o)
	if err != nil {
		return nil, err
	}
	log.Info("containerd ready", "pid", c.Pid(), "dir", c.Dir, "took", time.Since(t0).Round(time.Millisecond))
	t0 = time.Now()
	if err := c.ImportBusybox(ctx, ref); err != nil {
		stopBench(ctx, c)
		return nil, err
	}
	log.Info("busybox imported", "ref", ref, "took", time.Since(t0).Round(time.Millisecond))
	return c, nil
}

// stopBench stops c even when ctx is already cancelled (Ctrl-C).
func stopBench(ctx context.Context, c *devenv.Containerd) {
	ctx = context.WithoutCancel(ctx)
	if err := c.Stop(ctx); err != nil {
		logging.L(ctx).Error("stopping containerd", "error", err)
		return
	}
	logging.L(ctx).Info("containerd stopped", "removed", c.Dir)
}

// devContainerd implements "huskctl dev containerd".
func devContainerd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("dev containerd", flag.ContinueOnError)
	var b benchFlags
	b.register(fs)
	dir := fs.String("dir", "", "empty or new directory for everything, removed on exit (default a new one in $TMPDIR)")
	ref := fs.String("ref", devenv.BusyboxRef, "name of the busybox image")
	if done, err := parseFlags(fs, args); done {
		return err
	}
	o, err := b.options()
	if err != nil {
		return err
	}
	if *dir != "" {
		// Stop removes the directory: never take one with something in it.
		if ents, err := os.ReadDir(*dir); err == nil && len(ents) > 0 {
			return fmt.Errorf("--dir %s is not empty (it is removed on exit)", *dir)
		}
		o.Dir = *dir
	}
	c, err := startBench(ctx, o, *ref)
	if err != nil {
		return err
	}
	defer stopBench(ctx, c)

	fmt.Printf(`A private containerd is running (pid %d); its log is %s.

  export PATH=%s:$PATH
  export CONTAINERD_ADDRESS=%s
  export CONTAINERD_NAMESPACE=%s
  ctr run --rm -t --runtime %s %s demo sh

Ctrl-C stops it and removes %s.
`, c.Pid(), c.LogPath(), o.ToolsBin, c.Address(), c.Namespace, huskRuntime, *ref, c.Dir)
	<-ctx.Done()
	return nil
}

// devDemo implements "huskctl dev demo".
func devDemo(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("dev demo", flag.ContinueOnError)
	var b benchFlags
	b.register(fs)
	runtime := fs.String("runtime", huskRuntime, "containerd runtime to run the demo with")
	guest := fs.String("guest", config.Default().Virt.GuestImage, "the VM handler's guest image (make guest builds one)")
	if done, err := parseFlags(fs, args); done {
		return err
	}
	o, err := b.options()
	if err != nil {
		return err
	}
	if *runtime == huskRuntime {
		shim := filepath.Join(o.ShimDir, "containerd-shim-husk-v2")
		if _, err := os.Stat(shim); err != nil {
			return fmt.Errorf("%w: build it (go build -o %s ./cmd/containerd-shim-husk-v2) or pass --runtime io.containerd.runc.v2", err, shim)
		}
	}
	c, err := startBench(ctx, o, devenv.BusyboxRef)
	if err != nil {
		return err
	}
	defer stopBench(ctx, c)

	if code, err := demoRun(ctx, c, *runtime, "husk-demo", "echo hello from husk; uname -a; cat /proc/self/cgroup | head -3"); err != nil {
		return err
	} else if code != 0 {
		return fmt.Errorf("demo container exited with status %d", code)
	}
	code, err := demoRun(ctx, c, *runtime, "husk-demo-exit", "exit 3")
	if err != nil {
		return err
	}
	fmt.Printf("exit status of the container: %d (want 3)\n", code)
	if code != 3 {
		return fmt.Errorf("exit status %d was not propagated as 3", code)
	}
	if *runtime != huskRuntime {
		return nil
	}
	if err := demoWasm(ctx, c, *runtime); err != nil {
		return err
	}
	if err := demoPolicy(ctx, c, *runtime); err != nil {
		return err
	}
	return demoVM(ctx, c, *runtime, *guest)
}

// demoRun runs `sh -c script` in a new container, streaming its output to
// the terminal, and returns its exit status (ctr run exits with it).
func demoRun(ctx context.Context, c *devenv.Containerd, runtime, id, script string) (int, error) {
	args := []string{"run", "--rm", "--runtime", runtime, devenv.BusyboxRef, id, "sh", "-c", script}
	fmt.Printf("\n$ ctr %s '%s'\n", strings.Join(args[:len(args)-1], " "), script)
	cmd := c.CtrCmd(ctx, args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	err := cmd.Run()
	if exitErr, ok := errors.AsType[*exec.ExitError](err); ok && ctx.Err() == nil {
		return exitErr.ExitCode(), nil
	}
	if err != nil {
		return 0, fmt.Errorf("ctr run %s: %w", id, err)
	}
	return 0, nil
}

// devImage implements "huskctl dev image".
func devImage(_ context.Context, args []string) error {
	fs := flag.NewFlagSet("dev image", flag.ContinueOnError)
	out := fs.String("out", "", "OCI image-layout tarball to write (required)")
	ref := fs.String("ref", devenv.BusyboxRef, "image name (org.opencontainers.image.ref.name)")
	if done, err := parseFlags(fs, args); done {
		return err
	}
	if *out == "" {
		return errors.New("--out is required")
	}
	if err := devenv.BusyboxImage(*out, *ref); err != nil {
		return err
	}
	fmt.Printf("wrote %s (%s); import it with: ctr image import %s\n", *out, *ref, *out)
	return nil
}

// devRootfs implements "huskctl dev rootfs".
func devRootfs(_ context.Context, args []string) error {
	fs := flag.NewFlagSet("dev rootfs", flag.ContinueOnError)
	out := fs.String("out", "", "directory to write the root filesystem into (required)")
	if done, err := parseFlags(fs, args); done {
		return err
	}
	if *out == "" {
		return errors.New("--out is required")
	}
	if err := devenv.BusyboxRootfs(*out); err != nil {
		return err
	}
	fmt.Printf("wrote %s; run it with: ctr run --rm --rootfs %s ID /bin/sh\n", *out, *out)
	return nil
}
