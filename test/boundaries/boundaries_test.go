package boundaries

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/huskrt/husk"

// graph maps each package to the packages it imports directly (of the
// build, not of its tests).
type graph map[string][]string

// rule is a boundary: no package that from accepts may reach, directly or
// through others, a package that forbidden accepts.
type rule struct {
	name      string
	from      func(string) bool
	forbidden func(string) bool
}

// under reports whether pkg is dir of husk's module or a package below it.
func under(dirs ...string) func(string) bool {
	return func(pkg string) bool {
		for _, d := range dirs {
			p := module + "/" + d
			if pkg == p || strings.HasPrefix(pkg, p+"/") {
				return true
			}
		}
		return false
	}
}

func husk(pkg string) bool { return pkg == module || strings.HasPrefix(pkg, module+"/") }

// standard reports whether pkg is of Go's standard library (whose first
// path element has no dot).
func standard(pkg string) bool {
	first, _, _ := strings.Cut(pkg, "/")
	return !strings.Contains(first, ".")
}

func wazero(pkg string) bool { return strings.HasPrefix(pkg, "github.com/tetratelabs/wazero") }

// sharedLeaves are husk's packages that the stand-alone libraries (vmm,
// wasmhost) may use: each imports nothing of husk's itself (a rule below
// checks it), so a library using one can still be lifted out with it.
var sharedLeaves = []string{
	module + "/internal/boundedfile", // wasmhost.ReadModule's bounded read
	module + "/internal/textesc",     // wasmhost.EscapeText, and the hook chain's messages in every build
	module + "/internal/wazerowasi",  // wazero's WASI functions one by one, for wasmhost and the Wasm runner
}

// standalone forbids a library husk's packages outside its own tree,
// save the shared leaves.
func standalone(dir string) func(string) bool {
	own := under(dir)
	return func(pkg string) bool {
		return husk(pkg) && !own(pkg) && !slices.Contains(sharedLeaves, pkg)
	}
}

// rules are the boundaries docs/design.md draws.
var rules = []rule{
	{"vmm imports nothing of husk's", under("vmm"), standalone("vmm")},
	{"wasmhost imports nothing of husk's", under("wasmhost"), standalone("wasmhost")},
	{"the shared leaves import nothing of husk's", func(p string) bool { return slices.Contains(sharedLeaves, p) },
		func(p string) bool { return husk(p) && !slices.Contains(sharedLeaves, p) }},
	{"the vocabulary is a leaf", under("internal/vocab"), func(p string) bool { return husk(p) && !under("internal/vocab")(p) }},
	// huskctl policy new copies these two packages alone into a policy's
	// project (husk.PolicySDKPackages).
	{"the policy SDK imports only the standard library and the vocabulary", under("policies/sdk"),
		func(p string) bool { return !standard(p) && !under("policies/sdk", "internal/vocab")(p) }},
	{"the hook entry imports only the vocabulary", under("internal/hookconf"),
		func(p string) bool { return husk(p) && !under("internal/hookconf", "internal/vocab")(p) }},
	{"hooks knows no handler, manager, config or shim", under("hooks"), under("runtime", "shim", "cmd")},
	{"the runtime and its handlers import no shim", under("runtime"), under("shim", "cmd")},
	{"the handler contract and the Linux engine (which the agent links) link no hooks, wasmhost, persist, vmm or wazero",
		under("runtime/handler", "runtime/linux"),
		func(p string) bool { return under("hooks", "wasmhost", "runtime/persist", "vmm")(p) || wazero(p) }},
	{"the Wasm handler links no wazero (its runner runs workloads)",
		func(p string) bool { return under("runtime/wasm")(p) && !under("runtime/wasm/runner")(p) }, wazero},
	{"the guest agent links no hooks, wasmhost, vmm or shim", under("agent", "cmd/husk-agent"),
		func(p string) bool { return under("hooks", "wasmhost", "vmm", "shim")(p) || wazero(p) }},
}

// TestImportBoundaries checks every rule against the build's import
// graph, with and without the seccomp tag, and fails with the chain of
// imports that breaks one. A rule whose from matches no package fails too:
// a moved directory must not make its rule pass by checking nothing.
func TestImportBoundaries(t *testing.T) {
	for _, tags := range []string{"", "seccomp"} {
		g := load(t, tags)
		for _, r := range rules {
			t.Run(r.name+"/tags="+tags, func(t *testing.T) {
				n := 0
				for pkg := range g {
					if !r.from(pkg) {
						continue
					}
					n++
					if path := reach(g, pkg, r.forbidden); path != nil {
						t.Errorf("%s: %s", r.name, strings.Join(path, " → "))
					}
				}
				if n == 0 {
					t.Errorf("%s: no package of the build is one it applies to", r.name)
				}
			})
		}
	}
}

// TestReachFindsTheChain: the check finds a forbidden package through a
// chain of imports and names every step, and finds nothing when the
// forbidden package is only imported beside the chain.
func TestReachFindsTheChain(t *testing.T) {
	g := graph{
		"a": {"fmt", "b"},
		"b": {"c"},
		"c": {"bad"},
		"d": {"bad"},
		"e": {"a"},
	}
	isBad := func(p string) bool { return p == "bad" }
	if got, want := reach(g, "e", isBad), []string{"e", "a", "b", "c", "bad"}; !slices.Equal(got, want) {
		t.Errorf("reach(e) = %q, want %q", got, want)
	}
	if got := reach(g, "fmt", isBad); got != nil {
		t.Errorf("reach(fmt) = %q, want nothing", got)
	}
}

// reach returns the shortest chain of imports from pkg to a package that
// forbidden accepts, or nil.
func reach(g graph, pkg string, forbidden func(string) bool) []string {
	prev := map[string]string{pkg: ""}
	queue := []string{pkg}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if forbidden(p) {
			var path []string
			for ; p != ""; p = prev[p] {
				path = append(path, p)
			}
			slices.Reverse(path)
			return path
		}
		for _, q := range g[p] {
			if _, seen := prev[q]; !seen {
				prev[q] = p
				queue = append(queue, q)
			}
		}
	}
	return nil
}

// load lists every package of husk's module and its dependencies, as
// `go list -deps -json` sees them for linux with tags.
func load(t *testing.T, tags string) graph {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the import graph needs the go command on PATH: %v", err)
	}
	cmd := exec.Command(goBin, "list", "-deps", "-json=ImportPath,Imports,Error", "-tags="+tags, module+"/...")
	cmd.Dir = "../.."
	cmd.Env = append(cmd.Environ(), "GOOS=linux")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	g := make(graph)
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct {
			ImportPath string
			Imports    []string
			Error      *struct{ Err string }
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list's output: %v", err)
		}
		if p.Error != nil {
			t.Fatalf("go list: %s: %s", p.ImportPath, p.Error.Err)
		}
		g[p.ImportPath] = p.Imports
	}
	if _, ok := g[module+"/hooks"]; !ok {
		t.Fatalf("go list did not list %s/hooks: not run in husk's module?", module)
	}
	return g
}
