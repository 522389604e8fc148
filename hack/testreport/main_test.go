package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// The inputs in testdata are real `go test -json` output of a small
// package with a passing, a failing, a skipped and a parent test with a
// skipped subtest (mixed.json), and of a package that does not build
// (buildfail.json).

func runReport(t *testing.T, input string) (string, int) {
	t.Helper()
	var out bytes.Buffer
	rc := run(strings.NewReader(input), &out)
	return out.String(), rc
}

func readData(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestMixed(t *testing.T) {
	out, rc := runReport(t, readData(t, "mixed.json"))
	if rc != 1 {
		t.Errorf("exit %d with a failed test, want 1", rc)
	}
	for _, want := range []string{
		"a_test.go:5: boom\n--- FAIL: TestFail",
		"FAIL\texample.com/tr\t",
		"skipped:\nexample.com/tr TestSkip: a_test.go:4: needs /dev/kvm\nexample.com/tr TestSub/b: a_test.go:6: why not\n",
		"\n3 passed, 1 failed, 2 skipped\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	// Passing tests' output and the framing lines stay out, as with
	// plain go test.
	for _, not := range []string{"=== RUN", "--- PASS: TestPass"} {
		if strings.Contains(out, not) {
			t.Errorf("report has %q:\n%s", not, out)
		}
	}
}

func TestAllPassed(t *testing.T) {
	// mixed.json without its failing test: the run passes.
	var keep []string
	for _, l := range strings.SplitAfter(readData(t, "mixed.json"), "\n") {
		if strings.Contains(l, `"TestFail"`) {
			continue
		}
		l = strings.Replace(l, `"Action":"fail","Package":"example.com/tr"`, `"Action":"pass","Package":"example.com/tr"`, 1)
		l = strings.Replace(l, `"Output":"FAIL\n"`, `"Output":"PASS\n"`, 1)
		keep = append(keep, l)
	}
	out, rc := runReport(t, strings.Join(keep, ""))
	if rc != 0 {
		t.Errorf("exit %d, want 0:\n%s", rc, out)
	}
	if !strings.Contains(out, "ok  \texample.com/tr\t") || !strings.Contains(out, "\n3 passed, 0 failed, 2 skipped\n") {
		t.Errorf("report:\n%s", out)
	}
}

func TestBuildFailure(t *testing.T) {
	out, rc := runReport(t, readData(t, "buildfail.json"))
	if rc != 1 {
		t.Errorf("exit %d for a package that does not build, want 1", rc)
	}
	for _, want := range []string{"b/b_test.go:3:33: undefined: undefined", "[build failed]", "0 passed, 0 failed, 0 skipped"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

func TestCutShort(t *testing.T) {
	// The input ends while a test runs (go test killed): that test and
	// its package fail.
	var keep []string
	for _, l := range strings.SplitAfter(readData(t, "mixed.json"), "\n") {
		if strings.Contains(l, `"Test":"TestSub"`) && strings.Contains(l, `"Action":"run"`) {
			keep = append(keep, l)
			break
		}
		keep = append(keep, l)
	}
	out, rc := runReport(t, strings.Join(keep, ""))
	if rc != 1 {
		t.Errorf("exit %d for cut-short input, want 1", rc)
	}
	// TestFail failed, and TestSub never ended.
	if !strings.Contains(out, "[no result: go test output ended]") || !strings.Contains(out, "1 passed, 2 failed, 1 skipped") {
		t.Errorf("report:\n%s", out)
	}
}

func TestNotJSON(t *testing.T) {
	out, rc := runReport(t, "go: downloading example.com/x v1\n")
	if rc != 0 || !strings.HasPrefix(out, "go: downloading example.com/x v1\n") {
		t.Errorf("exit %d, report:\n%s", rc, out)
	}
}
