package guestimage

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/containerd/errdefs"

	"github.com/huskrt/husk/agent/api"
	"github.com/huskrt/husk/internal/cpio"
)

// Names of what Build writes into Options.OutDir.
const (
	KernelFile   = "vmlinuz"
	InitrdFile   = "initrd.img"
	ManifestFile = "manifest.json"
)

// ModuleDir is where the image holds its modules, and LoadOrderFile the list
// of them in load order (see the package documentation): the agent's side
// of the layout, agent/api's.
const (
	ModuleDir     = api.ModuleDir
	LoadOrderFile = api.LoadOrderFile
)

// Options says what to build the image from and where to write it.
type Options struct {
	KernelDir string   // an unpacked kernel package: <cache>/<package>_<version>
	Agent     string   // the agent binary, static: it becomes /init
	OutDir    string   // created if missing
	Modules   []string // what the agent needs; nil means AgentModules
	// Package and Version name the kernel package; empty means taken from
	// KernelDir's name (symlinks resolved), <package>_<version>.
	Package, Version string
}

// Build builds the image and writes it into o.OutDir; each file is written
// to a temporary name and renamed, the manifest last.
func Build(ctx context.Context, o Options) (*Manifest, error) {
	if o.KernelDir == "" || o.Agent == "" || o.OutDir == "" {
		return nil, fmt.Errorf("guest image: kernel dir, agent and output dir are required: %w", errdefs.ErrInvalidArgument)
	}
	pkg, ver := o.Package, o.Version
	if pkg == "" || ver == "" {
		p, v, err := packageOf(o.KernelDir)
		if err != nil {
			return nil, err
		}
		pkg, ver = or(pkg, p), or(ver, v)
	}
	t, err := OpenTree(o.KernelDir)
	if err != nil {
		return nil, err
	}
	wanted := o.Modules
	if wanted == nil {
		wanted = AgentModules
	}
	mods, err := t.Resolve(wanted)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	agent, err := os.ReadFile(o.Agent)
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	m := &Manifest{
		Package: pkg,
		Version: ver,
		Release: t.Release,
		Agent:   File{Name: o.Agent, Size: int64(len(agent)), SHA256: sum(agent)},
		Modules: make([]string, 0, len(mods)),
		Builtin: []string{},
		Built:   time.Now().UTC().Truncate(time.Second),
	}
	for _, w := range wanted {
		if t.Builtin(w) {
			m.Builtin = append(m.Builtin, canonical(w))
		}
	}
	initrd, err := initramfs(agent, mods)
	if err != nil {
		return nil, err
	}
	for _, mod := range mods {
		m.Modules = append(m.Modules, mod.FileName())
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return nil, err
	}
	kf, err := os.Open(t.Vmlinuz)
	if err != nil {
		return nil, err
	}
	defer kf.Close()
	if m.Kernel, err = writeAtomic(o.OutDir, KernelFile, kf); err != nil {
		return nil, err
	}
	if m.Initrd, err = writeAtomic(o.OutDir, InitrdFile, bytes.NewReader(initrd)); err != nil {
		return nil, err
	}
	js, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	if _, err := writeAtomic(o.OutDir, ManifestFile, bytes.NewReader(append(js, '\n'))); err != nil {
		return nil, err
	}
	return m, nil
}

// packageOf splits an unpacked package directory's name, <package>_<version>
// (Debian allows '_' in neither), following a symlink such as cloud-amd64.
func packageOf(dir string) (pkg, version string, err error) {
	resolved, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", "", err
	}
	pkg, version, ok := strings.Cut(filepath.Base(resolved), "_")
	if !ok || pkg == "" || version == "" {
		return "", "", fmt.Errorf("%s: name is not <package>_<version>: give the package and version: %w",
			resolved, errdefs.ErrInvalidArgument)
	}
	return pkg, version, nil
}

// initramfs returns the image's cpio archive (see the package documentation).
func initramfs(agent []byte, mods []Module) ([]byte, error) {
	a := cpio.NewArchive()
	a.File("init", 0o755, agent)
	for _, d := range []string{"proc", "sys", "dev", "run", "tmp", "mnt", "etc"} {
		a.Dir(d)
	}
	a.CharDevice("dev/console", 5, 1)
	a.Dir(ModuleDir)
	var order strings.Builder
	for _, mod := range mods {
		b, err := readModule(mod.Path)
		if err != nil {
			return nil, err
		}
		a.File(ModuleDir+"/"+mod.FileName(), 0o644, b)
		order.WriteString(mod.FileName() + "\n")
	}
	a.File(LoadOrderFile, 0o644, []byte(order.String()))
	return a.Bytes(), nil
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
