// Command testreport reads `go test -json` output on stdin and prints what
// plain `go test` would (each package's ok/FAIL/? line, the output of failed
// tests, build errors), then every skipped test with the reason it gave and
// a count of passed, failed and skipped tests. It exits 1 unless every
// package passed.
//
//	set -o pipefail; go test -json ./... | go run ./hack/testreport
//
// go test's own stderr is not read: leave it going to the terminal.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

func main() {
	os.Exit(run(os.Stdin, os.Stdout))
}

// event is a line of `go test -json` (cmd/test2json's TestEvent, plus the
// build events of `go build -json` that go test -json interleaves).
type event struct {
	Action      string
	Package     string
	Test        string
	Elapsed     float64
	Output      string
	ImportPath  string // build-output, build-fail
	FailedBuild string
}

// chunk is one output event of a package: Test is "" at package level.
type chunk struct {
	test, text string
}

type pkgState struct {
	name   string
	output []chunk
	// status of each test that ran: "run" until it ends, then pass,
	// fail or skip.
	status map[string]string
	order  []string         // tests in the order they started
	byTest map[string][]int // test -> indexes of its chunks in output
}

type skipped struct {
	pkg, test, reason string
}

type report struct {
	out     io.Writer
	pkgs    map[string]*pkgState
	order   []string // packages in the order they started
	skips   []skipped
	passed  int
	failed  int
	skipped int
	pkgFail bool // a package or a build failed
	outErr  error
}

func run(in io.Reader, out io.Writer) int {
	r := &report{out: out, pkgs: map[string]*pkgState{}}
	br := bufio.NewReaderSize(in, 64<<10)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			r.line(line)
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				fmt.Fprintf(os.Stderr, "testreport: reading input: %v\n", err)
				r.pkgFail = true
			}
			break
		}
	}
	r.finish()
	if r.outErr != nil {
		fmt.Fprintf(os.Stderr, "testreport: writing output: %v\n", r.outErr)
		return 1
	}
	if r.pkgFail || r.failed > 0 {
		return 1
	}
	return 0
}

func (r *report) print(s string) {
	if r.outErr != nil || s == "" {
		return
	}
	_, r.outErr = io.WriteString(r.out, s)
}

func (r *report) line(line []byte) {
	var e event
	trimmed := bytes.TrimSpace(line)
	if len(trimmed) == 0 || trimmed[0] != '{' || json.Unmarshal(trimmed, &e) != nil || e.Action == "" {
		// Not an event: whatever it is, show it.
		r.print(string(line))
		return
	}
	switch e.Action {
	case "build-output":
		// Compiler and vet errors, printed by plain go test as they come.
		r.print(e.Output)
		return
	case "build-fail":
		r.pkgFail = true
		return
	}
	if e.Package == "" {
		return
	}
	p := r.pkgs[e.Package]
	if p == nil {
		p = &pkgState{name: e.Package, status: map[string]string{}, byTest: map[string][]int{}}
		r.pkgs[e.Package] = p
		r.order = append(r.order, e.Package)
	}
	switch e.Action {
	case "output":
		if e.Test != "" {
			p.byTest[e.Test] = append(p.byTest[e.Test], len(p.output))
		}
		p.output = append(p.output, chunk{e.Test, e.Output})
	case "run":
		if e.Test != "" {
			if _, ok := p.status[e.Test]; !ok {
				p.order = append(p.order, e.Test)
			}
			p.status[e.Test] = "run"
		}
	case "pass", "fail", "skip":
		if e.Test == "" {
			r.endPackage(p, e)
			return
		}
		if _, ok := p.status[e.Test]; !ok {
			p.order = append(p.order, e.Test)
		}
		p.status[e.Test] = e.Action
		switch e.Action {
		case "pass":
			r.passed++
		case "fail":
			r.failed++
		case "skip":
			r.skipped++
			r.skips = append(r.skips, skipped{p.name, e.Test, skipReason(p, e.Test)})
		}
	}
}

// endPackage prints what plain go test prints for a package that ended
// with action: its summary line and, if it failed, its failed tests' output
// and its package-level output, in the order they came.
func (r *report) endPackage(p *pkgState, e event) {
	delete(r.pkgs, p.name)
	switch e.Action {
	case "pass":
		summary := ""
		for _, c := range p.output {
			if c.test == "" && strings.HasPrefix(c.text, "ok ") {
				summary = c.text
			}
		}
		if summary == "" {
			summary = fmt.Sprintf("ok  \t%s\t%.3fs\n", p.name, e.Elapsed)
		}
		r.print(summary)
	case "skip": // no test files
		r.printOutput(p, func(test string) bool { return test == "" })
	default:
		r.pkgFail = true
		r.failPackage(p)
	}
}

// failPackage prints a failed package's package-level output and the output
// of its failed tests. A test that never ended (the binary exited, panicked
// in another goroutine or timed out while it ran) counts as failed.
func (r *report) failPackage(p *pkgState) {
	for _, t := range p.order {
		if p.status[t] == "run" {
			p.status[t] = "fail"
			r.failed++
		}
	}
	r.printOutput(p, func(test string) bool {
		return test == "" || p.status[test] == "fail"
	})
}

// printOutput prints the package's output chunks for which show(test)
// holds, less the === RUN/PAUSE/CONT/NAME framing lines that plain go
// test (without -v) does not print.
func (r *report) printOutput(p *pkgState, show func(test string) bool) {
	var b strings.Builder
	atLineStart := map[string]bool{}
	for _, c := range p.output {
		start, seen := atLineStart[c.test]
		atLineStart[c.test] = strings.HasSuffix(c.text, "\n")
		if !show(c.test) || ((start || !seen) && isFraming(c.text)) {
			continue
		}
		b.WriteString(c.text)
	}
	out := b.String()
	if out != "" && !strings.HasSuffix(out, "\n") {
		out += "\n"
	}
	r.print(out)
}

func isFraming(s string) bool {
	for _, f := range []string{"=== RUN ", "=== PAUSE ", "=== CONT ", "=== NAME "} {
		if strings.HasPrefix(s, f) {
			return true
		}
	}
	return false
}

// skipReason is what a skipped test printed before its --- SKIP line:
// t.Skip's message (with its file:line), or anything it logged first.
func skipReason(p *pkgState, test string) string {
	var b strings.Builder
	for _, i := range p.byTest[test] {
		b.WriteString(p.output[i].text)
	}
	var lines []string
	for _, l := range strings.Split(b.String(), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || isFraming(l) || strings.HasPrefix(l, "--- SKIP: ") {
			continue
		}
		lines = append(lines, l)
	}
	if len(lines) == 0 {
		return "(no reason given)"
	}
	return strings.Join(lines, "; ")
}

// finish reports packages that never ended (the input was cut short), then
// the skipped tests and the counts.
func (r *report) finish() {
	for _, name := range r.order {
		p, ok := r.pkgs[name]
		if !ok {
			continue
		}
		r.pkgFail = true
		r.failPackage(p)
		r.print(fmt.Sprintf("FAIL\t%s [no result: go test output ended]\n", p.name))
	}
	r.print("\nskipped:\n")
	if len(r.skips) == 0 {
		r.print("(none)\n")
	}
	for _, s := range r.skips {
		r.print(fmt.Sprintf("%s %s: %s\n", s.pkg, s.test, s.reason))
	}
	r.print(fmt.Sprintf("%d passed, %d failed, %d skipped\n", r.passed, r.failed, r.skipped))
}
