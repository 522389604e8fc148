package main

import (
	"context"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
)

// runQuiet runs huskctl with args and returns its status and stdout;
// subcommands' usage goes to the process's stderr, which the test leaves.
func runQuiet(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out strings.Builder
	code := run(context.Background(), args, &out, io.Discard)
	return code, out.String()
}

// TestHelpAndVersionExitZero: the usual ways to ask huskctl for help, or
// its version, succeed; so does -h after every command and subcommand
// (#13 item 5).
func TestHelpAndVersionExitZero(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}, {"-help"}, {"version"}, {"--version"}, {"help", "policy"}} {
		if code, _ := runQuiet(t, args...); code != 0 {
			t.Errorf("huskctl %s: exit %d, want 0", strings.Join(args, " "), code)
		}
	}
	if _, out := runQuiet(t, "--help"); !strings.Contains(out, "usage: huskctl") {
		t.Errorf("--help printed %q on stdout", out)
	}
	subs := map[string][]string{
		"config": {"dump", "check"},
		"dev":    {"containerd", "demo", "image", "rootfs"},
		"guest":  {"build"},
		"policy": {"new", "build", "test"},
		"vm":     {"run"},
	}
	for name := range commands() {
		for _, h := range []string{"-h", "--help"} {
			if code, _ := runQuiet(t, name, h); code != 0 {
				t.Errorf("huskctl %s %s: exit %d, want 0", name, h, code)
			}
		}
		for _, sub := range subs[name] {
			if code, _ := runQuiet(t, name, sub, "-h"); code != 0 {
				t.Errorf("huskctl %s %s -h: exit %d, want 0", name, sub, code)
			}
		}
	}
	for _, args := range [][]string{nil, {"bogus"}, {"config", "bogus"}} {
		if code, _ := runQuiet(t, args...); code != 2 && code != 1 {
			t.Errorf("huskctl %s: exit %d, want a failure", strings.Join(args, " "), code)
		}
	}
}

// huskctlCommand finds huskctl's command words in documentation: after
// "huskctl ", the words up to the first flag, path or end.
var huskctlCommand = regexp.MustCompile("huskctl((?: [a-z][a-z-]*)+)")

// inlineCode is Markdown's inline code.
var inlineCode = regexp.MustCompile("`[^`]*`")

// docCommands returns the huskctl command lines of a Markdown file's code
// (indented blocks, fences and inline code).
func docCommands(t *testing.T, path string) [][]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var code []string
	fenced := false
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(line, "```"):
			fenced = !fenced
		case fenced, strings.HasPrefix(line, "    "):
			code = append(code, line)
		default:
			code = append(code, inlineCode.FindAllString(line, -1)...)
		}
	}
	var cmds [][]string
	for _, c := range code {
		for _, m := range huskctlCommand.FindAllStringSubmatch(c, -1) {
			cmds = append(cmds, strings.Fields(m[1]))
		}
	}
	return cmds
}

// TestDocumentedCommandsExist: every huskctl command the README and
// docs/hooks.md show exists (its -h succeeds, and its words are a command
// and subcommand), and the README names every command (#13 item 5).
func TestDocumentedCommandsExist(t *testing.T) {
	cmds := commands()
	for _, doc := range []string{"../../README.md", "../../docs/hooks.md"} {
		found := docCommands(t, doc)
		if len(found) == 0 {
			t.Fatalf("%s shows no huskctl command", doc)
		}
		for _, words := range found {
			if _, ok := cmds[words[0]]; !ok {
				t.Errorf("%s shows huskctl %s: no such command", doc, strings.Join(words, " "))
				continue
			}
			// A command's words, then -h: a word that is not a
			// subcommand fails (unknown subcommand, or an argument
			// where none is taken).
			if code, _ := runQuiet(t, append(words[:min(len(words), 2)], "-h")...); code != 0 {
				t.Errorf("%s shows huskctl %s: its -h exits %d", doc, strings.Join(words, " "), code)
			}
		}
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for name := range cmds {
		if !strings.Contains(string(readme), "`huskctl "+name) {
			t.Errorf("README.md does not list huskctl %s", name)
		}
	}
}
