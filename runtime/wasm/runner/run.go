package runner

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	goruntime "runtime"
	"slices"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"

	"github.com/huskrt/husk/runtime/wasm/runnerapi"
)

// TrapStatus is the exit status of a module that trapped or that wazero
// could not instantiate (the shim refuses modules with unknown imports at
// create, so that is rare).
const TrapStatus = runnerapi.TrapStatus

// Main runs the runner with its command line (without the program name)
// and returns the process's exit status: the module's proc_exit code, 0
// when its start function returns, TrapStatus on a trap, 128+n when signal
// n ends it (see signals.go), 127 for a module that cannot be read, 126 for
// one that cannot be compiled or lacks the export asked for, and 125 for a
// bad command line.
func Main(args []string) int {
	stopSignals := handleSignals()
	defer stopSignals()

	fs := flag.NewFlagSet("husk-wasm-runner", flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	module := fs.String(runnerapi.FlagModule, "", "module file (default: args[0])")
	fn := fs.String(runnerapi.FlagFunc, "", "export to run instead of _start")
	pages := fs.Uint(runnerapi.FlagPages, runnerapi.MaxPages, "memory limit in 64 KiB pages")
	cacheDir := fs.String(runnerapi.FlagCache, "", "compilation cache directory (read-only is fine)")
	precompile := fs.Bool(runnerapi.FlagPrecompile, false, "compile the module on stdin into -cache and exit")
	noHome := fs.Bool(runnerapi.FlagNoHome, false, "drop HOME from the environment (the spec set none)")
	preopenList := fs.String(runnerapi.FlagPreopens, runnerapi.DefaultPreopens, "directories to preopen: dir[:name],... (empty: none)")
	if err := fs.Parse(args); err != nil {
		return runnerapi.Usage
	}
	if *precompile {
		return Precompile(context.Background(), *cacheDir, os.Stdin, os.Stderr)
	}
	wasiArgs := fs.Args()
	if len(wasiArgs) == 0 {
		fmt.Fprintln(os.Stderr, "husk-wasm-runner: no module given")
		return runnerapi.Usage
	}
	if *module == "" {
		*module = wasiArgs[0]
	}
	if *pages == 0 || *pages > runnerapi.MaxPages {
		fmt.Fprintf(os.Stderr, "husk-wasm-runner: -%s %d: want 1..%d\n", runnerapi.FlagPages, *pages, runnerapi.MaxPages)
		return runnerapi.Usage
	}
	preopens, err := checkPreopens(*preopenList)
	if err != nil {
		fmt.Fprintf(os.Stderr, "husk-wasm-runner: -%s: %v\n", runnerapi.FlagPreopens, err)
		return runnerapi.Usage
	}
	return run(context.Background(), options{
		module: *module, fn: *fn, pages: uint32(*pages), cacheDir: *cacheDir, preopens: preopens,
		args: wasiArgs, env: environ(os.Environ(), *noHome),
		stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr,
	})
}

type options struct {
	module   string
	fn       string
	pages    uint32
	cacheDir string
	// preopens are the directories the module gets; nil: none.
	preopens []runnerapi.Preopen
	// wazeroWASI: wazero's preview1 alone, without the runner's own calls
	// (for tests that show what those change).
	wazeroWASI bool
	args       []string
	env        []string
	stdin      io.Reader
	stdout     io.Writer
	stderr     io.Writer
}

func run(ctx context.Context, o options) int {
	wasm, err := os.ReadFile(o.module)
	if err != nil {
		fmt.Fprintf(o.stderr, "husk-wasm-runner: reading module: %v\n", err)
		return runnerapi.NoModule
	}
	rc := RuntimeConfig().WithMemoryLimitPages(o.pages)
	if o.cacheDir != "" {
		// The shim compiled the module into this cache before starting us;
		// a hit only reads it. A miss would make wazero write, which fails on
		// the read-only mount; compile is retried without the cache then.
		if c, err := wazero.NewCompilationCacheWithDir(o.cacheDir); err == nil {
			rc = rc.WithCompilationCache(c)
		}
	}
	rt := wazero.NewRuntimeWithConfig(ctx, rc)
	compiled, err := rt.CompileModule(ctx, wasm)
	if err != nil && o.cacheDir != "" {
		_ = rt.Close(ctx)
		rt = wazero.NewRuntimeWithConfig(ctx, RuntimeConfig().WithMemoryLimitPages(o.pages))
		compiled, err = rt.CompileModule(ctx, wasm)
	}
	if err != nil {
		fmt.Fprintf(o.stderr, "husk-wasm-runner: compiling %s: %v\n", o.module, err)
		return runnerapi.BadModule
	}
	// Loading read the module and its compiled code into buffers that are
	// garbage now: drop them, for the next collection. Not a forced one
	// (debug.FreeOSMemory) here: it left the heap's next goal at its
	// minimum, so the module's first host calls started a collection, and
	// a collection whose stop-the-world comes while the module computes
	// without calling the host waits for it (Go cannot preempt compiled
	// Wasm; the runner compiles without wazero's termination checks, for
	// speed): the goroutine that ends the runner on SIGTERM waited with
	// it, and a Go module's `ctr task kill` hung (TestSignals, 1 run in 3).
	wasm = nil
	wd, _ := os.Getwd()
	env := withPWD(o.env, wd)
	imports := wasiImports(compiled)
	instantiate := func(ctx context.Context, rt wazero.Runtime) error {
		return instantiateWASI(ctx, rt, o.preopens, imports, newEnviron(env))
	}
	if o.wazeroWASI {
		instantiate = func(ctx context.Context, rt wazero.Runtime) error {
			_, err := wasi_snapshot_preview1.Instantiate(ctx, rt)
			return err
		}
	}
	if err := instantiate(ctx, rt); err != nil {
		fmt.Fprintf(o.stderr, "husk-wasm-runner: WASI: %v\n", err)
		return runnerapi.BadModule
	}

	cfg := wazero.NewModuleConfig().
		WithArgs(o.args...).
		WithStdin(o.stdin).WithStdout(o.stdout).WithStderr(o.stderr).
		WithSysWalltime().WithSysNanotime().WithSysNanosleep().WithOsyield(goruntime.Gosched).
		WithRandSource(rand.Reader).
		WithFSConfig(fsConfig(o.preopens))
	if o.wazeroWASI { // the runner's own environ calls serve it otherwise
		for _, kv := range env {
			k, v, _ := strings.Cut(kv, "=")
			cfg = cfg.WithEnv(k, v)
		}
	}
	if o.fn != "" {
		if _, ok := compiled.ExportedFunctions()[o.fn]; !ok {
			fmt.Fprintf(o.stderr, "husk-wasm-runner: %s has no exported function %q\n", o.module, o.fn)
			return runnerapi.BadModule
		}
		// A reactor initialises itself in _initialize; skipped if absent.
		cfg = cfg.WithStartFunctions("_initialize", o.fn)
	}
	_, err = rt.InstantiateModule(ctx, compiled, cfg)
	return exitStatus(o.stderr, o.module, err)
}

// exitStatus turns the outcome of running a module into the process's exit
// status, reporting traps on stderr.
func exitStatus(stderr io.Writer, module string, err error) int {
	var ee *sys.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return int(ee.ExitCode())
	default:
		fmt.Fprintf(stderr, "husk-wasm-runner: %s: %v\n", module, err)
		return TrapStatus
	}
}

// withPWD adds PWD=wd (the process's working directory, which libcontainer
// set from the OCI spec's cwd) to env unless env has PWD or wd is "/" (or
// unknown): WASI preview1 has no working directory, Go's wasip1 port (like
// other toolchains) takes it from PWD and takes "/" without it, so a module
// whose cwd is "/" sees exactly the spec's environment.
func withPWD(env []string, wd string) []string {
	if wd == "" || wd == "/" {
		return env
	}
	for _, kv := range env {
		if strings.HasPrefix(kv, "PWD=") {
			return env
		}
	}
	return append(env, "PWD="+wd)
}

// environ is the module's environment: the process's, less HOME when
// noHome says the spec set none (libcontainer added it).
func environ(env []string, noHome bool) []string {
	if !noHome {
		return env
	}
	return slices.DeleteFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "HOME=") })
}

// checkPreopens parses a preopen list and checks that each directory is
// one. The directories are paths in the container: after pivot_root the
// process's "/" is the container's rootfs, with the container's mounts
// (and their ro/rw flags) in place, and the kernel resolves "..", absolute
// paths and symlinks inside it, so a preopen reaches nothing outside the
// container.
func checkPreopens(list string) ([]runnerapi.Preopen, error) {
	preopens, err := runnerapi.ParsePreopens(list)
	if err != nil {
		return nil, err
	}
	for _, p := range preopens {
		fi, err := os.Stat(p.Dir)
		if err != nil {
			return nil, err
		}
		if !fi.IsDir() {
			return nil, fmt.Errorf("%s is not a directory", p.Dir)
		}
	}
	return preopens, nil
}

// fsConfig preopens the directories, in order (the module sees them as
// file descriptors 3, 4, ...).
func fsConfig(preopens []runnerapi.Preopen) wazero.FSConfig {
	c := wazero.NewFSConfig()
	for _, p := range preopens {
		c = c.WithDirMount(p.Dir, p.Name)
	}
	return c
}

// maxPrecompile bounds the module Precompile reads.
const maxPrecompile = 1 << 30

// Precompile compiles the module read from r into the file cache in
// cacheDir, for the shim, which runs the runner on the host for this
// (so that the shim links no wazero and a large compile's memory goes with
// this process). A module wazero rejects: BadModule, wazero's message on
// stderr.
func Precompile(ctx context.Context, cacheDir string, r io.Reader, stderr io.Writer) int {
	if cacheDir == "" {
		fmt.Fprintln(stderr, "husk-wasm-runner: -precompile needs -cache")
		return runnerapi.Usage
	}
	wasm, err := io.ReadAll(io.LimitReader(r, maxPrecompile))
	if err != nil {
		fmt.Fprintf(stderr, "husk-wasm-runner: reading module: %v\n", err)
		return runnerapi.NoModule
	}
	c, err := wazero.NewCompilationCacheWithDir(cacheDir)
	if err != nil {
		fmt.Fprintf(stderr, "husk-wasm-runner: cache %s: %v\n", cacheDir, err)
		return runnerapi.Usage
	}
	rt := wazero.NewRuntimeWithConfig(ctx, RuntimeConfig().WithCompilationCache(c))
	if _, err := rt.CompileModule(ctx, wasm); err != nil {
		fmt.Fprintln(stderr, err)
		return runnerapi.BadModule
	}
	return 0
}
