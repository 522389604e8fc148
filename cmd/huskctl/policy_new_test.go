package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestPolicyNewProject: policy new writes a project that, outside this
// repository and offline, passes its Go tests, builds with its config and
// passes its own suite; a suite case that expects the wrong verdict fails
// (exit 1), a broken suite is an error (exit 2) (#13 item 4).
func TestPolicyNewProject(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Go policy")
	}
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "no-nc")
	var out bytes.Buffer
	if err := policyNew([]string{dir}, &out); err != nil {
		t.Fatal(err)
	}
	if err := policyNew([]string{dir}, &out); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("policy new over a project: %v", err)
	}
	if err := policyNew([]string{filepath.Join(t.TempDir(), "Bad Name")}, &out); err == nil {
		t.Error("a name with a space and capitals was taken")
	}
	// The project's own tests, with no proxy and no workspace: the copy of
	// the SDK is all it needs.
	goTest := exec.Command("go", "test", "./...")
	goTest.Dir = dir
	goTest.Env = append(os.Environ(), "GOPROXY=off", "GOWORK=off", "GOFLAGS=-mod=mod")
	if b, err := goTest.CombinedOutput(); err != nil {
		t.Fatalf("go test in the new project: %v\n%s", err, b)
	}
	module := filepath.Join(dir, "no-nc.wasm")
	if err := policyBuild(ctx, []string{dir, "-o", module, "--config", filepath.Join(dir, "config.json")}, &out); err != nil {
		t.Fatal(err)
	}
	suite := filepath.Join(dir, "tests.json")
	var so, se bytes.Buffer
	if code := policyTest(ctx, []string{"--module", module, "--suite", suite}, nil, &so, &se); code != 0 {
		t.Fatalf("the project's suite: exit %d\n%s%s", code, &so, &se)
	}
	if !strings.Contains(so.String(), "PASS  nc may not start") || !strings.Contains(so.String(), "4 of 4 passed") {
		t.Errorf("suite output:\n%s", &so)
	}

	// A case expecting the wrong verdict fails, and says why.
	b, err := os.ReadFile(suite)
	if err != nil {
		t.Fatal(err)
	}
	wrong := writeTemp(t, t.TempDir(), "wrong.json", bytes.Replace(b, []byte(`"want": "deny",
      "reason": "program \"nc\" is not allowed"`), []byte(`"want": "allow"`), 1))
	so.Reset()
	if code := policyTest(ctx, []string{"--suite", wrong, "--module", module}, nil, &so, &se); code != 1 {
		t.Errorf("a failing case: exit %d, want 1\n%s", code, &so)
	}
	if !strings.Contains(so.String(), `FAIL  nc may not start: got deny (program "nc" is not allowed to run here), want allow`) || !strings.Contains(so.String(), "3 of 4 passed") {
		t.Errorf("suite output:\n%s", &so)
	}

	for _, tt := range []struct{ name, suite, stderr string }{
		{"no cases", `{"cases": []}`, "no cases"},
		{"unknown member", `{"cases": [{"name": "a", "point": "container.start", "event": {}, "want": "allow", "wnat": "deny"}]}`, `unknown field "wnat"`},
		{"bad want", `{"cases": [{"name": "a", "point": "container.start", "event": {}, "want": "maybe"}]}`, `want "maybe"`},
		{"no event", `{"cases": [{"name": "a", "point": "container.start", "want": "allow"}]}`, "give event or event_file"},
		{"unknown point", `{"cases": [{"name": "a", "point": "container.strat", "event": {}, "want": "allow"}]}`, `unknown point "container.strat"`},
		{"typo in config", `{"config": {"denny": []}, "cases": [{"name": "a", "point": "container.start", "event": {}, "want": "allow"}]}`, "unknown key denny"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := writeTemp(t, t.TempDir(), "s.json", []byte(tt.suite))
			var so, se bytes.Buffer
			if code := policyTest(ctx, []string{"--module", module, "--suite", p}, nil, &so, &se); code != 2 || !strings.Contains(se.String(), tt.stderr) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, &se, tt.stderr)
			}
		})
	}
	// The one-event form still works.
	so.Reset()
	event := writeTemp(t, t.TempDir(), "start.json", []byte(`{"version":1,"sandbox":{"id":"p","namespace":"n","handler":"linux","annotations":{}},
		"container":{"id":"c","image":null},"process":{"args":["nc"],"env":[],"cwd":"/","terminal":false,"user":{"uid":0,"gid":0,"additional_gids":[],"username":""}}}`))
	if code := policyTest(ctx, []string{"--module", module, "--point", "container.start", "--event", event, "--config", filepath.Join(dir, "config.json")}, nil, &so, &se); code != 1 {
		t.Errorf("one event: exit %d, want 1 (denied)\n%s%s", code, &so, &se)
	}
}

// TestPolicyBuildWithConfig: a built-in policy that requires a config
// fails to load in policy build without one, saying to give it with
// --config, and builds with it (#13 item 4).
func TestPolicyBuildWithConfig(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Go policy")
	}
	ctx := context.Background()
	dir := t.TempDir()
	out := filepath.Join(dir, "ai.wasm")
	var stdout bytes.Buffer
	err := policyBuild(ctx, []string{"../../policies/allowed-images", "-o", out}, &stdout)
	if err == nil || !strings.Contains(err.Error(), "give its [hook.config] as JSON with --config") || !strings.Contains(err.Error(), "images: required") {
		t.Fatalf("without a config: %v", err)
	}
	cfg := writeTemp(t, dir, "cfg.json", []byte(`{"images": ["husk.local/"]}`))
	if err := policyBuild(ctx, []string{"../../policies/allowed-images", "-o", out, "--config", cfg}, &stdout); err != nil {
		t.Fatal(err)
	}
	typo := writeTemp(t, dir, "typo.json", []byte(`{"imagez": ["husk.local/"]}`))
	if err := policyBuild(ctx, []string{"--config", typo, "../../policies/allowed-images", "-o", out}, &stdout); err == nil || !strings.Contains(err.Error(), "unknown key imagez") {
		t.Errorf("with a typo in the config: %v", err)
	}
}
