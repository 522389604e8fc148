package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/huskrt/husk/internal/guestimage"
	"github.com/huskrt/husk/internal/logging"
)

const guestUsage = `usage: huskctl guest build [--out DIR] [--agent PATH] [--kernel-dir DIR] [--cache DIR]

  build   build the VM guest image: Debian's cloud kernel and an initramfs
          whose /init is husk-agent, with the kernel modules it loads;
          writes vmlinuz, initrd.img and manifest.json into --out

Without --kernel-dir, the kernel package linux-image-cloud-amd64 depends on
is downloaded with apt-get and unpacked under --cache (nothing is installed).
`

// Defaults of "huskctl guest build".
const (
	defaultGuestOut   = "/var/cache/husk/guest"
	defaultGuestCache = "/var/cache/husk/kernel"
)

// runGuest implements "huskctl guest build".
func runGuest(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, guestUsage)
		return errors.New("missing subcommand")
	}
	switch args[0] {
	case "build":
		return guestBuild(ctx, args[1:])
	case "-h", "-help", "--help", "help":
		fmt.Fprint(os.Stderr, guestUsage)
		return nil
	default:
		fmt.Fprint(os.Stderr, guestUsage)
		return fmt.Errorf("unknown subcommand %q", args[0])
	}
}

func guestBuild(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("guest build", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), guestUsage) }
	out := fs.String("out", defaultGuestOut, "directory to write the image into")
	agent := fs.String("agent", "", "the guest agent binary (default husk-agent next to huskctl)")
	kernelDir := fs.String("kernel-dir", "", "an unpacked kernel package, <package>_<version> (default: fetch into --cache)")
	cache := fs.String("cache", defaultGuestCache, "where kernel packages are unpacked")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *agent == "" {
		self, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find husk-agent next to huskctl: %w (give --agent)", err)
		}
		*agent = filepath.Join(filepath.Dir(self), "husk-agent")
	}
	if *kernelDir == "" {
		logging.L(ctx).Info("fetching the kernel package", "cache", *cache)
		dir, err := guestimage.Fetch(ctx, *cache)
		if err != nil {
			return err
		}
		*kernelDir = dir
	}
	m, err := guestimage.Build(ctx, guestimage.Options{KernelDir: *kernelDir, Agent: *agent, OutDir: *out})
	if err != nil {
		return err
	}
	printManifest(os.Stdout, *out, m)
	return nil
}

// printManifest summarises a built image.
func printManifest(w io.Writer, dir string, m *guestimage.Manifest) {
	fmt.Fprintf(w, "guest image in %s, built %s\n", dir, m.Built.Format("2006-01-02 15:04:05Z"))
	fmt.Fprintf(w, "  kernel   %s %s (release %s)\n", m.Package, m.Version, m.Release)
	for _, f := range []struct {
		label string
		guestimage.File
	}{{"vmlinuz", m.Kernel}, {"initrd", m.Initrd}, {"agent", m.Agent}} {
		fmt.Fprintf(w, "  %-8s %6.1f MiB  sha256 %s  %s\n", f.label, float64(f.Size)/(1<<20), f.SHA256, f.Name)
	}
	fmt.Fprintf(w, "  built in %s\n", strings.Join(m.Builtin, " "))
	fmt.Fprintf(w, "  modules  %s\n", strings.Join(m.Modules, " "))
}
