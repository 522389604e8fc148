package api

import (
	"bytes"
	"debug/buildinfo"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGeneratedCodeIsCurrent regenerates agent.pb.go and agent_ttrpc.pb.go
// from agent.proto into a temporary directory, the way `make proto` does,
// and fails when the committed files differ: a .proto edited without
// regenerating, or generated code edited by hand.
func TestGeneratedCodeIsCurrent(t *testing.T) {
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(repo, "go.mod")); err != nil {
		t.Fatalf("repository root not found: %v", err)
	}
	// .tools/bin first, as in the Makefile.
	path := filepath.Join(repo, ".tools", "bin") + string(os.PathListSeparator) + os.Getenv("PATH")
	protoc := lookPath(t, path, "protoc")
	// The plugins must be the versions go.mod pins (the versions of the
	// runtime libraries the generated code runs on): other versions
	// generate other code, and the difference would say nothing.
	for plugin, module := range map[string]string{
		"protoc-gen-go":       "google.golang.org/protobuf",
		"protoc-gen-go-ttrpc": "github.com/containerd/ttrpc",
	} {
		bin := lookPath(t, path, plugin)
		info, err := buildinfo.ReadFile(bin)
		if err != nil {
			t.Skipf("%s: cannot read its build info: %v", bin, err)
		}
		if want := moduleVersion(t, repo, module); info.Main.Version != want {
			t.Skipf("%s is %s %s, go.mod has %s; run hack/install-tools.sh", bin, module, info.Main.Version, want)
		}
	}

	out := t.TempDir()
	cmd := exec.Command(protoc, "--proto_path=.",
		"--go_out=paths=source_relative:"+out,
		"--go-ttrpc_out=paths=source_relative:"+out,
		"agent/api/agent.proto")
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "PATH="+path)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, b)
	}
	for _, name := range []string{"agent.pb.go", "agent_ttrpc.pb.go"} {
		want, err := os.ReadFile(filepath.Join(out, "agent", "api", name))
		if err != nil {
			t.Fatal(err)
		}
		have, err := os.ReadFile(name)
		if err != nil {
			t.Fatalf("%v; run make proto", err)
		}
		if !bytes.Equal(withoutProtocVersion(have), withoutProtocVersion(want)) {
			t.Errorf("agent/api/%s differs from what agent.proto generates; run make proto", name)
		}
	}
}

// withoutProtocVersion drops the header line naming protoc's own version:
// it comes from the distribution (apt), and a different protoc that
// generates the same code is no reason to fail.
func withoutProtocVersion(src []byte) []byte {
	var b bytes.Buffer
	for line := range bytes.Lines(src) {
		if strings.HasPrefix(string(line), "// \tprotoc ") {
			continue
		}
		b.Write(line)
	}
	return b.Bytes()
}

// lookPath finds name in path, or skips the test.
func lookPath(t *testing.T, path, name string) string {
	t.Helper()
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	t.Skipf("%s not found in PATH or .tools/bin; `make tools` (hack/install-tools.sh) installs it", name)
	return ""
}

// moduleVersion is the version of module go.mod requires.
func moduleVersion(t *testing.T, repo, module string) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("go not found in PATH, to read go.mod's version of %s", module)
	}
	cmd := exec.Command(gobin, "list", "-m", "-f", "{{.Version}}", module)
	cmd.Dir = repo
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	return strings.TrimSpace(string(out))
}
