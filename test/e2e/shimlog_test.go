package e2e

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/huskrt/husk/test/devenv"
)

// TestPolicyUpdateAuditReachesShimLog: an update's hook lines — the
// engine's audit line and the module's own log line — reach the shim's
// log (containerd's), tagged with the container.
func TestPolicyUpdateAuditReachesShimLog(t *testing.T) {
	needBench(t)
	id := name(t, "")
	reason := "would refuse the update of " + id
	cfg := hookConfig(t, fmt.Sprintf(`
[[hook]]
name = "watch-updates"
module = %q
points = ["container.update"]
mode = "audit"

[hook.config]
allow = false
reason = %q
`, decisionModule(t), reason))
	cleanupContainer(t, id)
	ctr(t, "run", "-d", "--memory-limit", fmt.Sprint(64<<20), "--runtime", husk, "--runtime-config-path", cfg,
		devenv.BusyboxRef, id, "sleep", "1000")
	from := logSize(t)
	if err := updateMemory(t, id, 48<<20); err != nil {
		t.Fatalf("update under an audit-mode hook: %v", err)
	}
	if got := limitOf(t, id); got != 48<<20 {
		t.Fatalf("memory limit after an audited update = %d, want %d", got, 48<<20)
	}
	wants := map[string][]string{
		"the audit line":        {"audit: hook would deny", "point=container.update", "container=" + id, reason},
		"the module's log line": {"msg=container.update", "hook=watch-updates", "from=module", "id=" + id},
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		lines := logLinesSince(t, from)
		var missing []string
		for what, parts := range wants {
			if !anyLineHasAll(lines, parts) {
				missing = append(missing, fmt.Sprintf("%s (%q)", what, parts))
			}
		}
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the shim's log lacks %s", strings.Join(missing, ", "))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// anyLineHasAll reports whether one of lines contains every part.
func anyLineHasAll(lines []string, parts []string) bool {
	for _, l := range lines {
		all := true
		for _, p := range parts {
			if !strings.Contains(l, p) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

// logSize is the size of containerd's log now: logLinesSince(logSize())
// reads only what is logged after, not what an earlier run of a test left.
func logSize(t *testing.T) int64 {
	t.Helper()
	fi, err := os.Stat(bench.LogPath())
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// logLinesSince returns the lines of containerd's log from byte offset on.
func logLinesSince(t *testing.T, offset int64) []string {
	t.Helper()
	b, err := os.ReadFile(bench.LogPath())
	if err != nil {
		t.Fatal(err)
	}
	if offset > int64(len(b)) {
		offset = 0
	}
	return strings.Split(string(b[offset:]), "\n")
}
