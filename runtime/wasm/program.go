package wasm

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/huskrt/husk/internal/logging"
	"github.com/huskrt/husk/runtime/handler"
	"github.com/huskrt/husk/runtime/wasm/runnerapi"
)

// Where the runner and the cache view appear in a Wasm container. Below
// /dev when the spec mounts a tmpfs there (containerd's default spec does),
// so that the mount points are made in that tmpfs and never in the image's
// rootfs; below the rootfs's root otherwise.
const (
	privDirDev  = "/dev/.husk"
	privDirRoot = "/.husk"
	runnerName  = "wasm-runner"
	cacheName   = "wasm-cache"
)

// AnnotationPreopens lists the directories a Wasm container's module gets
// as WASI preopens: "dir[:name],...", dir a path in the container and name
// what the module sees (dir when absent); "" preopens none. Without it the
// module gets the container's root as "/". See docs/wasm.md.
const AnnotationPreopens = "io.husk.wasm.preopens"

// program is linux.Program for one container: it makes the runner the
// process of a container (and of its execs) whose args[0] is a Wasm module.
type program struct {
	h *Handler
	// smart: a container whose program is not Wasm runs natively instead of
	// failing (crun's wasm-smart).
	smart bool

	sandboxDir, id string
	// wasm is set by Prepare when the container runs a module; the rest
	// is only meaningful then.
	wasm    bool
	privDir string // privDirDev or privDirRoot
	pages   uint32
	view    *view // nil: no cache entry could be named, the runner compiles
	// preopens is the io.husk.wasm.preopens annotation, checked; set
	// tells that there was one.
	preopens    string
	preopensSet bool
	// artifact is set when the module is a layer of the image (artifact.go).
	artifact *artifact
}

// Prepare looks at args[0] in the mounted rootfs and, for a Wasm module,
// checks and compiles it, and rewrites the spec to run it under the runner.
func (p *program) Prepare(ctx context.Context, req *handler.CreateRequest, spec *specs.Spec, rootfs string) error {
	p.sandboxDir, p.id = req.StateDir, req.ID
	proc := spec.Process
	mod, err := p.find(rootfs, bindRoots(spec.Mounts), proc, p.smart)
	if errors.Is(err, errdefs.ErrNotFound) {
		mod, err = p.fromImage(ctx, req, proc, err)
	}
	if err != nil || mod == nil {
		return err
	}
	if p.h.runnerErr != nil {
		return fmt.Errorf("wasm container %s: %w", req.ID, p.h.runnerErr)
	}
	if p.preopens, p.preopensSet, err = preopensOf(spec.Annotations); err != nil {
		return fmt.Errorf("wasm container %s: %w", req.ID, err)
	}
	p.wasm = true
	p.privDir = privDirRoot
	for _, m := range spec.Mounts {
		if path.Clean(m.Destination) == "/dev" && m.Type == "tmpfs" {
			p.privDir = privDirDev
		}
	}
	entry, err := p.h.cache.Ensure(ctx, mod.path, mod.wasm)
	if err != nil {
		return err
	}
	if p.pages, err = modulePages(spec, entry, mod.wasm); err != nil {
		return fmt.Errorf("wasm container %s: %w", req.ID, err)
	}
	mounts := slices.Clone(spec.Mounts)
	mounts = append(mounts, specs.Mount{
		Destination: path.Join(p.privDir, runnerName),
		Type:        "bind",
		Source:      p.h.runner,
		Options:     []string{"rbind", "ro", "nosuid", "nodev"},
	})
	mounts = p.artifactMount(mounts, mod)
	if entry != "" {
		v, err := p.h.cache.newView(p.sandboxDir, p.id)
		if err != nil {
			return err
		}
		p.view = v
		if err := v.add(entry); err != nil {
			return err
		}
		mounts = append(mounts, specs.Mount{
			Destination: path.Join(p.privDir, cacheName),
			Type:        "bind",
			Source:      v.dir,
			Options:     []string{"rbind", "ro", "nosuid", "nodev", "noexec"},
		})
	}
	spec.Mounts = mounts
	cp := *proc
	cp.Args = p.runnerArgs(mod, cp.Env)
	spec.Process = &cp
	logging.L(ctx).Debug("wasm container", "id", req.ID, "module", mod.path, "func", mod.fn, "pages", p.pages, "cached", entry != "")
	return nil
}

// PrepareExec runs an exec whose args[0] is a Wasm module (or "path#func")
// under the runner, with the container's limits; other execs run natively.
func (p *program) PrepareExec(ctx context.Context, execID string, proc *specs.Process, root string) error {
	if !p.wasm {
		return nil
	}
	// A native exec (a shell, say) is fine in a Wasm container.
	mod, err := p.find(root, nil, proc, true)
	if errors.Is(err, errdefs.ErrNotFound) {
		mod, err = p.artifactExec(proc)
	}
	if err != nil || mod == nil {
		return err
	}
	entry, err := p.h.cache.Ensure(ctx, mod.path, mod.wasm)
	if err != nil {
		return fmt.Errorf("exec %s: %w", execID, err)
	}
	if entry != "" && p.view != nil {
		if err := p.view.add(entry); err != nil {
			return err
		}
	}
	proc.Args = p.runnerArgs(mod, proc.Env)
	return nil
}

// Release removes the container's cache view.
func (p *program) Release(ctx context.Context) error {
	if p.view == nil {
		return nil
	}
	return p.h.cache.removeView(p.sandboxDir, p.id)
}

// module is a Wasm module found as a process's args[0].
type module struct {
	path string // in the container
	fn   string // export to run, "" for _start
	args []string
	wasm []byte
}

// find resolves proc's args[0] under root (and binds, see lookupMounted).
// It returns nil (and no error) when the program is not Wasm and smart is
// set; otherwise a program that is not a usable module is an error saying
// why. A program not found is ErrNotFound, smart or not: the image may
// hold the module (fromImage).
func (p *program) find(root string, binds []bindRoot, proc *specs.Process, smart bool) (*module, error) {
	file, fn := splitFunc(proc.Args[0])
	f, cpath, err := lookupMounted(root, binds, file, proc.Env, proc.Cwd)
	if err != nil {
		if smart && !errors.Is(err, errdefs.ErrNotFound) {
			return nil, nil // the native path reports it, as for any container
		}
		return nil, fmt.Errorf("wasm module %w", err)
	}
	defer f.Close()
	ok, head, err := isWasm(f)
	switch {
	case err != nil && smart:
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("wasm module %s: %w", cpath, err)
	case !ok && smart:
		return nil, nil
	case !ok:
		return nil, fmt.Errorf("%s is not a Wasm module (it starts with %q, a module with %q): %w",
			cpath, head, magic, errdefs.ErrInvalidArgument)
	}
	b, err := readModule(f)
	if err != nil {
		return nil, fmt.Errorf("wasm module %s: %w", cpath, err)
	}
	if err := checkImports(cpath, b); err != nil {
		return nil, err
	}
	args := slices.Clone(proc.Args)
	args[0] = file
	return &module{path: cpath, fn: fn, args: args, wasm: b}, nil
}

// runnerArgs is the command line that runs mod under the runner, for a
// process with environment env.
func (p *program) runnerArgs(mod *module, env []string) []string {
	args := []string{
		path.Join(p.privDir, runnerName),
		"-" + runnerapi.FlagModule, mod.path,
		"-" + runnerapi.FlagPages, strconv.FormatUint(uint64(p.pages), 10),
	}
	if p.view != nil {
		args = append(args, "-"+runnerapi.FlagCache, path.Join(p.privDir, cacheName))
	}
	if mod.fn != "" {
		args = append(args, "-"+runnerapi.FlagFunc, mod.fn)
	}
	if p.preopensSet {
		args = append(args, "-"+runnerapi.FlagPreopens+"="+p.preopens)
	}
	if !hasHome(env) {
		args = append(args, "-"+runnerapi.FlagNoHome)
	}
	return append(append(args, "--"), mod.args...)
}

// hasHome tells whether env sets a non-empty HOME, which libcontainer
// keeps; otherwise it adds one, which the runner is told to drop.
func hasHome(env []string) bool {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "HOME="); ok && v != "" {
			return true
		}
	}
	return false
}

// preopensOf returns the io.husk.wasm.preopens annotation, checked, and
// whether there is one.
func preopensOf(annotations map[string]string) (string, bool, error) {
	v, ok := annotations[AnnotationPreopens]
	if !ok {
		return "", false, nil
	}
	if _, err := runnerapi.ParsePreopens(v); err != nil {
		return "", false, fmt.Errorf("annotation %s: %w: %w", AnnotationPreopens, err, errdefs.ErrInvalidArgument)
	}
	return v, true, nil
}

// errNoRunner says where the runner was looked for.
var errNoRunner = errors.New("husk-wasm-runner not found")
