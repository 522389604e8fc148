package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSplitWords(t *testing.T) {
	for _, tc := range []struct {
		line string
		want []string
		bad  bool
	}{
		{"", nil, false},
		{"  echo   a\tb ", []string{"echo", "a", "b"}, false},
		{`echo 'a b' "c  d" e''f ""`, []string{"echo", "a b", "c  d", "ef", ""}, false},
		{`echo "it's"`, []string{"echo", "it's"}, false},
		{`echo 'open`, nil, true},
	} {
		got, err := splitWords(tc.line)
		if (err != nil) != tc.bad {
			t.Errorf("splitWords(%q): error %v, want error %v", tc.line, err, tc.bad)
			continue
		}
		if strings.Join(got, "|") != strings.Join(tc.want, "|") || len(got) != len(tc.want) {
			t.Errorf("splitWords(%q) = %q, want %q", tc.line, got, tc.want)
		}
	}
}

func TestRunDebugShell(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "note"), []byte("a note\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	t.Cleanup(func() { _ = os.Chdir(wd) })
	in := strings.Join([]string{
		"echo 'hello  there' world",
		"cd " + dir,
		"pwd",
		"ls",
		"cat note",
		"nosuch",
		"cat /no/such/file",
		"kill 1",
		"/bin/echo from a program",
		"/bin/sh -c 'exit 5'",
		"ps",
		"exit 7",
		"echo never",
	}, "\n") + "\n"
	var out strings.Builder
	code := RunDebugShell(strings.NewReader(in), &out)
	if code != 7 {
		t.Errorf("exit status %d, want 7", code)
	}
	text := out.String()
	for _, want := range []string{
		"hello  there world\n",
		dir + "\n",
		" note\n",
		"a note\n",
		"nosuch: no such command",
		"cat: open /no/such/file: no such file or directory",
		"kill: pid 1 is husk-agent",
		"from a program\n",
		"[5]\n",
		"COMMAND\n",
		shellPrompt,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "never") {
		t.Errorf("the shell went on after exit:\n%s", text)
	}
	// The end of the input ends the shell with 0; a line past the bound
	// with 1.
	if code := RunDebugShell(strings.NewReader("echo x"), &out); code != 0 {
		t.Errorf("at EOF: status %d, want 0", code)
	}
	if code := RunDebugShell(strings.NewReader(strings.Repeat("x", maxShellLine+10)+"\n"), &out); code != 1 {
		t.Errorf("an overlong line: status %d, want 1", code)
	}
}
