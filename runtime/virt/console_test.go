package virt

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// A VM's console is kept, bounded, and writing it never fails.
func TestConsoleLog(t *testing.T) {
	dir := t.TempDir()
	c := newConsoleLog(dir)
	line := bytes.Repeat([]byte("x"), 1000)
	line[999] = '\n'
	for range 3 * maxConsole / 1000 {
		if n, err := c.Write(line); n != len(line) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	cur, err := os.ReadFile(filepath.Join(dir, consoleFile))
	if err != nil {
		t.Fatal(err)
	}
	old, err := os.ReadFile(filepath.Join(dir, consoleFile+".1"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cur)+len(old) > maxConsole || len(old) < maxConsole/2-1000 || len(cur) == 0 {
		t.Errorf("console kept %d + %d bytes, want at most %d in all and the half before in .1", len(cur), len(old), maxConsole)
	}
	// A flood in one write keeps its end.
	flood := bytes.Repeat([]byte("y"), 2*maxConsole)
	flood[len(flood)-1] = 'z'
	if n, err := c.Write(flood); n != len(flood) || err != nil {
		t.Fatalf("Write of a flood = %d, %v", n, err)
	}
	if cur, _ = os.ReadFile(filepath.Join(dir, consoleFile)); len(cur) > maxConsole/2 || cur[len(cur)-1] != 'z' {
		t.Errorf("after a flood: %d bytes, last %q", len(cur), cur[len(cur)-1])
	}
	// The VM's directory gone (the pod removed): writes still succeed.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Write([]byte("late\n")); n != 5 || err != nil {
		t.Errorf("Write after the directory went = %d, %v", n, err)
	}
}
