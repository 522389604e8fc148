package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/huskrt/husk/hooks"
	"github.com/huskrt/husk/internal/boundedfile"
	"github.com/huskrt/husk/internal/logging"
	"github.com/huskrt/husk/policies/build"
	"github.com/huskrt/husk/runtime/config"
	"github.com/huskrt/husk/wasmhost"
)

const policyUsage = `usage: huskctl policy new DIR
       huskctl policy build DIR [-o OUT.wasm] [--config CONFIG.json]
       huskctl policy test --module M.wasm --point POINT --event EVENT.json [flags]
       huskctl policy test --module M.wasm --suite TESTS.json [flags]

  new     write a ready Go policy project into DIR: the policy, its config,
          Go tests, a suite for policy test --suite, a README, and a go.mod
          building against a copy of husk's SDK (huskctl policy new -h)
  build   build the policy in DIR (a Go package, or .c files on husk's C
          SDK, docs/hooks.md §5) into a hook module (default
          OUT: DIR's name + .wasm), check it loads (handing it the config
          table of --config, a JSON object, as husk would: a policy that
          requires a config fails to load without one), print its sha256.
  test    run a hook module on one event, as husk would, and print its
          decision and patch. Exit status: 0 allowed, 1 denied, 2 error
          (bad arguments, or the module failed: trap, timeout, garbage...).
          With --suite, run it on every case of a suite file instead, each
          with the verdict expected of it (as opa test does), and print
          PASS or FAIL for each. Exit status: 0 all passed, 1 some failed,
          2 error. Flags (anywhere on the line):
            --module PATH        the .wasm module
            --point NAME         the point (container.create, process.exec, ...)
            --event PATH         the event JSON ("-": stdin), as docs/hooks.md
                                 describes; a regular file (or stdin) of at
                                 most 16 MiB
            --suite PATH         a suite file (JSON, at most 16 MiB):
                                 {"config": {...}, "cases": [{"name": "...",
                                 "point": "...", "event": {...} or
                                 "event_file": "rel/path.json", "config":
                                 {...} (optional), "want": "allow", "deny"
                                 or "error", "reason": "part of the reason"
                                 (optional), "patch": [...] (optional)}]}
            --config PATH        the hook's config table as a JSON object; a
                                 regular file of at most 1 MiB (with
                                 --suite: for cases and suites without one)
            --kind KIND          check (default: a patch is a failure) or change
            --timeout D          call deadline (default 1s)
            --memory-limit SIZE  memory limit (default 64MiB)
            --json               print the outcome as one JSON object
`

// errDenied is runPolicy's error when the module denied: huskctl exits 1.
var errDenied = errors.New("denied")

// runPolicy implements "huskctl policy test|build".
func runPolicy(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, policyUsage)
		return errors.New("missing subcommand")
	}
	switch args[0] {
	case "test":
		switch policyTest(ctx, args[1:], os.Stdin, os.Stdout, os.Stderr) {
		case 0:
			return nil
		case 1:
			return errDenied
		}
		return exitStatus(2) // the documented status for errors, distinct from a denial
	case "build":
		return policyBuild(ctx, args[1:], os.Stdout)
	case "new":
		return policyNew(args[1:], os.Stdout)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(os.Stderr, policyUsage)
		return nil
	}
	fmt.Fprint(os.Stderr, policyUsage)
	return fmt.Errorf("unknown subcommand %q", args[0])
}

// policyTest runs "policy test" and returns its exit status. stdin is
// what --event - reads.
func policyTest(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("policy test", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, policyUsage) }
	module := fs.String("module", "", "the .wasm module")
	point := fs.String("point", "", "the point")
	eventPath := fs.String("event", "", "the event JSON")
	suitePath := fs.String("suite", "", "a suite of events with expected verdicts")
	configPath := fs.String("config", "", "the hook's config table as JSON")
	kind := fs.String("kind", string(config.DefaultHookKind), "the hook's kind: check or change")
	timeout := fs.String("timeout", string(config.DefaultHookTimeout), "call deadline")
	memory := fs.String("memory-limit", string(config.DefaultHookMemoryLimit), "memory limit")
	asJSON := fs.Bool("json", false, "print the outcome as JSON")
	fail := func(err error) int {
		fmt.Fprintf(stderr, "huskctl policy test: %v\n", err)
		return 2
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	switch {
	case len(pos) > 0:
		return fail(fmt.Errorf("unexpected argument %q", pos[0]))
	case *suitePath != "" && (*point != "" || *eventPath != ""):
		return fail(errors.New("--suite gives the points and events: no --point or --event with it"))
	case *suitePath != "" && *module == "":
		return fail(errors.New("--module is required"))
	case *suitePath == "" && (*module == "" || *point == "" || *eventPath == ""):
		return fail(errors.New("--module, --point and --event are required (or --module and --suite)"))
	}

	h := config.Hook{
		Name: hookName(*module), Module: *module, Points: []string{*point},
		Kind: config.HookKind(*kind), Mode: config.HookEnforce, OnError: config.HookDeny,
		Timeout: config.Duration(*timeout), MemoryLimit: config.ByteSize(*memory),
	}
	if abs, err := filepath.Abs(*module); err == nil {
		h.Module = abs
	}
	if *configPath != "" {
		if h.Config, err = readConfigObject(*configPath); err != nil {
			return fail(err)
		}
	}
	if *suitePath != "" {
		return runSuite(ctx, h, *suitePath, stdout, stderr)
	}
	event, err := readInput(*eventPath, maxEventFile, stdin)
	if err != nil {
		return fail(err)
	}

	engine, err := hooks.New(ctx, []config.Hook{h.WithDefaults()}, hooks.Options{})
	if err != nil {
		return fail(err)
	}
	defer engine.Close(ctx)
	out, err := engine.Run(ctx, hooks.Point(*point), json.RawMessage(event))
	if err != nil {
		return fail(err)
	}
	if out.Cause != nil {
		return fail(out.Cause)
	}
	if err := printOutcome(stdout, &out, *asJSON); err != nil {
		return fail(err)
	}
	if !out.Allowed {
		return 1
	}
	return 0
}

// hookName makes a hook name from a module's file name.
func hookName(module string) string {
	name := strings.ToLower(strings.TrimSuffix(filepath.Base(module), ".wasm"))
	var b strings.Builder
	for _, c := range name {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-' {
			b.WriteRune(c)
		}
	}
	if b.Len() == 0 || strings.IndexByte("._-", b.String()[0]) >= 0 {
		return "module"
	}
	return b.String()
}

// Bounds on the files "policy test" reads: an event is the JSON of one
// step (a container.create event with a large OCI spec is tens of KB), a
// config the [hook.config] table of one hook.
const (
	maxEventFile  = 16 << 20
	maxConfigFile = 1 << 20
)

// readInput reads the regular file at path, or stdin for "-" (when stdin
// is not nil), refusing more than limit bytes. A FIFO, device, socket or
// directory is refused without blocking on it (open(2) of a FIFO waits
// for a writer, a device may never end): a pipe is given on stdin, where
// it is meant, and bounded too.
func readInput(path string, limit int64, stdin io.Reader) ([]byte, error) {
	if path == "-" && stdin != nil {
		return boundedfile.ReadAll("read", path, stdin, limit)
	}
	b, err := boundedfile.Read("read", path, limit)
	if errors.Is(err, boundedfile.ErrNotRegular) && stdin != nil {
		return nil, fmt.Errorf(`%w; give a pipe on stdin with "-"`, err)
	}
	return b, err
}

// printOutcome prints the decision, the patch and the patched event.
func printOutcome(w io.Writer, out *hooks.Outcome, asJSON bool) error {
	var ops []hooks.Op
	for _, p := range out.Patches {
		ops = append(ops, p.Ops...)
	}
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Allow  bool            `json:"allow"`
			Reason string          `json:"reason,omitempty"`
			Patch  []hooks.Op      `json:"patch,omitempty"`
			Event  json.RawMessage `json:"event,omitempty"`
		}{out.Allowed, out.Reason, ops, patchedEvent(out)})
	}
	if !out.Allowed {
		_, err := fmt.Fprintf(w, "deny: %s\n", out.Reason)
		return err
	}
	if len(ops) == 0 {
		_, err := fmt.Fprintln(w, "allow")
		return err
	}
	patch, err := json.MarshalIndent(ops, "  ", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "allow, with a patch:\n  %s\npatched event:\n  %s\n", patch, indentJSON(out.Event))
	return err
}

func patchedEvent(out *hooks.Outcome) json.RawMessage {
	if !out.Patched() {
		return nil
	}
	return out.Event
}

func indentJSON(b []byte) []byte {
	var v any
	if json.Unmarshal(b, &v) != nil {
		return b
	}
	out, err := json.MarshalIndent(v, "  ", "  ")
	if err != nil {
		return b
	}
	return out
}

// policyBuild runs "policy build".
func policyBuild(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("policy build", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), policyUsage) }
	out := fs.String("o", "", "output module (default: DIR's name + .wasm)")
	configPath := fs.String("config", "", "the config table to load the module with, as a JSON object")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if len(pos) != 1 {
		fs.Usage()
		return errors.New("want one package directory")
	}
	dir := pos[0]
	var cfg map[string]any
	if *configPath != "" {
		// Read before building: a bad config file fails at once.
		if cfg, err = readConfigObject(*configPath); err != nil {
			return err
		}
	}
	if *out == "" {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return err
		}
		*out = filepath.Base(abs) + ".wasm"
	}
	if err := build.Go(ctx, dir, *out); err != nil {
		return err
	}
	wasm, err := wasmhost.ReadModule(*out, 0)
	if err != nil {
		return err
	}
	// Load it as husk would, with --config's table (without one, a policy
	// that requires a config fails here, which is worth knowing too), so
	// that an ABI or config problem shows now and not in the shim.
	abs, err := filepath.Abs(*out)
	if err != nil {
		return err
	}
	h := config.Hook{Name: hookName(*out), Module: abs, Points: []string{string(hooks.ContainerCreate)}, Config: cfg}.WithDefaults()
	// The engine logs a load failure too; the error below says it once.
	quiet := logging.WithLogger(ctx, slog.New(slog.DiscardHandler))
	engine, err := hooks.New(quiet, []config.Hook{h}, hooks.Options{})
	if err != nil {
		if *configPath == "" {
			return fmt.Errorf("built %s, but it does not load without a config (give its [hook.config] as JSON with --config): %w", *out, err)
		}
		return fmt.Errorf("built %s, but it does not load with %s: %w", *out, *configPath, err)
	}
	_ = engine.Close(ctx)
	sum := sha256.Sum256(wasm)
	_, err = fmt.Fprintf(stdout, "%s: %d bytes, sha256 %s\n", *out, len(wasm), hex.EncodeToString(sum[:]))
	return err
}
