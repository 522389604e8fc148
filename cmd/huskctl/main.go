// Command huskctl is husk's operator and developer tool: it checks and prints
// configuration, builds and tests hook policies, and runs the private
// development containerd used by the tests and the demo.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"

	"github.com/huskrt/husk/version"
)

// command is one huskctl subcommand. Each lives in its own file and adds
// itself to commands from main's table below, never from init().
type command struct {
	summary string
	run     func(ctx context.Context, args []string) error
}

func commands() map[string]command {
	return map[string]command{
		"check":         {"say what this host can run (the VM handler's needs) and why not", runCheck},
		"config":        {"print or check husk's effective configuration (check: hook modules too)", runConfig},
		"debug-console": {"open a shell in a VM pod's guest, through its agent ([virt] debug_console)", runDebugConsole},
		"dev":           {"development bench: private containerd, test images", runDev},
		"guest":         {"build the VM guest image (kernel, initrd with husk-agent)", runGuest},
		"metrics":       {"print a sandbox shim's Prometheus metrics (or pprof pages)", runMetrics},
		"policy":        {"write, build and test hook policies (new, build, test)", runPolicy},
		"version":       {"print huskctl's version and git revision", runVersion},
		"vm":            {"run a VM with husk's VMM, for debugging", runVM},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(withLogger(ctx), os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// isHelp says whether arg asks for help, in any of the usual spellings.
func isHelp(arg string) bool {
	switch arg {
	case "-h", "-help", "--help", "help":
		return true
	}
	return false
}

// run runs huskctl with args (without the program name) and returns its
// exit status: 0 done (help too), 1 failed, 2 bad usage. Subcommands
// document statuses of their own (policy test: 1 denied, 2 error).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmds := commands()
	if len(args) == 0 {
		usage(stderr, cmds)
		return 2
	}
	name := args[0]
	switch {
	case name == "--version":
		name = "version"
	case isHelp(name) && len(args) > 1 && !isHelp(args[1]):
		// "huskctl help CMD" is "huskctl CMD -h".
		name, args = args[1], []string{args[1], "-h"}
	case isHelp(name):
		usage(stdout, cmds)
		return 0
	}
	c, ok := cmds[name]
	if !ok {
		fmt.Fprintf(stderr, "huskctl: unknown command %q\n", name)
		usage(stderr, cmds)
		return 2
	}
	if err := c.run(ctx, args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0 // the subcommand printed its usage, as asked
		}
		if st, ok := errors.AsType[exitStatus](err); ok {
			return int(st) // the subcommand has said why
		}
		fmt.Fprintf(stderr, "huskctl %s: %v\n", name, err)
		return 1
	}
	return 0
}

// exitStatus is a subcommand's error when it has reported its failure
// itself and wants huskctl to exit with this status.
type exitStatus int

func (s exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(s)) }

func usage(w io.Writer, cmds map[string]command) {
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintln(w, "usage: huskctl <command> [flags]\n\ncommands:")
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "\n`huskctl <command> -h` (or `huskctl help <command>`) describes a command.")
}

// runVersion implements "huskctl version".
func runVersion(_ context.Context, args []string) error {
	if len(args) > 0 {
		if isHelp(args[0]) {
			fmt.Fprintln(os.Stderr, "usage: huskctl version")
			return nil
		}
		return fmt.Errorf("unexpected argument %q", args[0])
	}
	fmt.Printf("huskctl %s (revision %s)\n", version.Version, version.Revision)
	return nil
}
