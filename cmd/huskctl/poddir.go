package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/containerd/errdefs"

	"github.com/huskrt/husk/runtime/config"
	"github.com/huskrt/husk/runtime/persist"
)

// podFlags are the flags of a command that acts on one pod's shim, found
// under husk's state directory: --namespace and --config.
type podFlags struct{ ns, cfgPath *string }

func addPodFlags(fs *flag.FlagSet) podFlags {
	return podFlags{
		ns:      fs.String("namespace", "", "containerd namespace of the pod (default: search all)"),
		cfgPath: fs.String("config", "", "husk config file (default $HUSK_CONFIG or /etc/husk/config.toml)"),
	}
}

// parse parses args, which must name one pod, and loads husk's
// configuration; it returns the state directory and the pod's id.
func (p podFlags) parse(fs *flag.FlagSet, args []string) (stateDir, id string, err error) {
	if err := fs.Parse(args); err != nil {
		return "", "", err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return "", "", errors.New("want one pod id")
	}
	cfg, err := config.Load(config.Path(*p.cfgPath))
	if err != nil {
		return "", "", err
	}
	return cfg.Runtime.StateDir, fs.Arg(0), nil
}

// podDir finds the state directory of pod (or sandbox) id under stateDir:
// in namespace ns, or, with ns empty, in whichever namespace has it (one
// only: several is an error that asks for --namespace). id must be a
// single path element.
func podDir(stateDir, ns, id string) (string, error) {
	if id == "" || id != filepath.Base(id) || id == "." || id == ".." {
		return "", fmt.Errorf("pod id %q: %w", id, errdefs.ErrInvalidArgument)
	}
	if ns != "" {
		dir := persist.Dir(stateDir, ns, id)
		if _, err := os.Stat(dir); err != nil {
			return "", fmt.Errorf("no pod %s in namespace %s under %s: %w", id, ns, stateDir, errdefs.ErrNotFound)
		}
		return dir, nil
	}
	matches, _ := filepath.Glob(filepath.Join(stateDir, "*", id))
	switch len(matches) {
	case 0:
		return "", fmt.Errorf("no pod %s under %s: %w", id, stateDir, errdefs.ErrNotFound)
	case 1:
		return matches[0], nil
	}
	return "", fmt.Errorf("pod %s exists in several namespaces (%v): say which with --namespace: %w", id, matches, errdefs.ErrInvalidArgument)
}
