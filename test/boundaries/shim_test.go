package boundaries

import (
	"bytes"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// notInShim are packages the shim binary must not link (shared/TARGETS.md
// P2, docs/RATIONALE.md "Why the shim is built with grpcnotrace").
// text/template calls reflect.Value.MethodByName with a name it learns at
// run time, and a binary that can reach such a call keeps every exported
// method of every type it links: with it the shim was 4.5 MB larger
// (text, rodata and pclntab: 25.2 against 20.7 MB) and its RSS with one
// idle container about 3 MiB higher. gRPC's x/net/trace (request traces,
// off unless grpc.EnableTracing) is what brought it in; the grpcnotrace
// build tag leaves it out. Prometheus' Go client (and with it procfs,
// expvar, its protobuf model) is not linked either: the shim writes its
// few metrics itself (shim/metrics_text.go; docs/RATIONALE.md, "Why the
// shim writes its metrics itself").
var notInShim = []string{"text/template", "html/template", "golang.org/x/net/trace", "github.com/prometheus/", "expvar"}

// makeBuildTags returns the tags the Makefile builds the binaries with,
// the BUILDTAGS line's words before any variant's.
func makeBuildTags(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^BUILDTAGS\s*:?=\s*([^$\n]*)`).FindSubmatch(b)
	if m == nil {
		t.Fatal("the Makefile has no BUILDTAGS line")
	}
	return strings.Fields(string(m[1]))
}

// TestShimLinksNoTemplates checks that the shim links none of notInShim:
// it checks the shim's dependencies as the Makefile
// builds it (its BUILDTAGS, with and without each variant's tags), and
// that those tags leave gRPC's tracing out: a build without grpcnotrace
// must list the packages, or the test would pass by checking nothing.
func TestShimLinksNoTemplates(t *testing.T) {
	tags := makeBuildTags(t)
	if !slices.Contains(tags, "grpcnotrace") {
		t.Fatalf("the Makefile's BUILDTAGS %q lack grpcnotrace", tags)
	}
	deps := func(tags []string) []string {
		cmd := exec.Command("go", "list", "-deps", "-tags="+strings.Join(tags, ","), module+"/cmd/containerd-shim-husk-v2")
		cmd.Dir = "../.."
		cmd.Env = append(cmd.Environ(), "GOOS=linux", "CGO_ENABLED=1")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list: %v\n%s", err, stderr.String())
		}
		return strings.Fields(string(out))
	}
	for _, variant := range [][]string{nil, {"husk_novmm"}, {"husk_nohooks"}} {
		got := deps(append(slices.Clone(tags), variant...))
		for _, p := range notInShim {
			for _, g := range got {
				if g == p || strings.HasSuffix(p, "/") && strings.HasPrefix(g, p) {
					t.Errorf("the shim built with tags %q links %s", append(slices.Clone(tags), variant...), g)
				}
			}
		}
	}
	without := slices.DeleteFunc(slices.Clone(tags), func(s string) bool { return s == "grpcnotrace" })
	if got := deps(without); !slices.Contains(got, "golang.org/x/net/trace") {
		t.Errorf("without grpcnotrace (tags %q) the shim does not link golang.org/x/net/trace: the check above checks nothing", without)
	}
}
