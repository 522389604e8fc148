package shim

import (
	"fmt"
	"io"
	"path/filepath"
	goruntime "runtime"
	"runtime/debug"
	"strings"

	"github.com/huskrt/husk/hooks"
	"github.com/huskrt/husk/runtime/handler"
	"github.com/huskrt/husk/version"
)

// pkg/shim answers -v (and -version) with containerd's version, the
// library's, not husk's: Run answers it first.

// shimValueFlags are pkg/shim's flags that take a value (the next
// argument, unless given as -flag=value).
var shimValueFlags = map[string]bool{
	"namespace": true, "id": true, "socket": true, "debug-socket": true,
	"bundle": true, "address": true, "publish-binary": true,
}

// wantsVersion reports whether the shim's command line asks for its
// version, as pkg/shim's flag parsing would read it: -v, --v, -version or
// --version (=true too) among the flags before the first argument.
func wantsVersion(args []string) bool {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" || !strings.HasPrefix(a, "-") || a == "-" {
			return false
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		switch {
		case name == "v" || name == "version":
			if !hasVal || val == "true" || val == "1" {
				return true
			}
		case shimValueFlags[name] && !hasVal:
			i++ // its value
		}
	}
	return false
}

// printVersion writes husk's version, and the containerd shim library it
// is built on, as containerd's shims print theirs; then the handlers of
// this build, with a handler's backends where it has some (the virt
// handler's hypervisors: a build variant may leave husk's VMM out), and
// whether it runs hook modules (another variant leaves the engine out).
func printVersion(w io.Writer, prog string, hs ...handler.Handler) {
	fmt.Fprintf(w, "%s:\n", filepath.Base(prog))
	fmt.Fprintf(w, "  Version:    %s\n", version.Version)
	fmt.Fprintf(w, "  Revision:   %s\n", version.Revision)
	fmt.Fprintf(w, "  Go version: %s\n", goruntime.Version())
	wazero := ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			switch d.Path {
			case "github.com/containerd/containerd/v2":
				fmt.Fprintf(w, "  containerd: %s (pkg/shim)\n", d.Version)
			case "github.com/tetratelabs/wazero":
				wazero = " (wazero " + d.Version + ")"
			}
		}
	}
	var names []string
	for _, h := range hs {
		n := h.Name()
		if b, ok := h.(interface{ Backends() []string }); ok {
			n += " (" + strings.Join(b.Backends(), ", ") + ")"
		}
		names = append(names, n)
	}
	if len(names) > 0 {
		fmt.Fprintf(w, "  Handlers:   %s\n", strings.Join(names, ", "))
	}
	if hooks.Built {
		fmt.Fprintf(w, "  Hooks:      Wasm modules%s\n", wazero)
	} else {
		fmt.Fprintf(w, "  Hooks:      none: %v\n", hooks.ErrNotInBuild)
	}
}
