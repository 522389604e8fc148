package nested

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestClockWatch: uptime lines that keep pace with the host's time are no
// jump, however they arrive split; one that leaps ahead of it is, and the
// first jump is the one said.
func TestClockWatch(t *testing.T) {
	host := time.Unix(1_000_000, 0)
	c := newClockWatch()
	c.now = func() time.Time { return host }
	write := func(s string) {
		t.Helper()
		if n, err := c.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write: %d, %v", n, err)
		}
	}
	write("boot noise\r\n" + clockMarker + "3.20\r\n")
	for up := 18.2; up < 100; up += 15 {
		host = host.Add(14 * time.Second) // a slower host is no jump either
		line := fmt.Sprintf("HUSK-CTR: something\n%s%.2f\n", clockMarker, up)
		write(line[:7])
		write(line[7:])
	}
	if j := c.Jump(); j != "" {
		t.Fatalf("a steady clock: jump %q", j)
	}
	host = host.Add(15 * time.Second)
	write(clockMarker + "180000.5\n")
	host = host.Add(15 * time.Second)
	write(clockMarker + "999999.5\n")
	j := c.Jump()
	if !strings.Contains(j, "→ 180000 s") || !strings.Contains(j, "in 15s of the host's time") {
		t.Errorf("jump %q, want the first one, 93 s → 180000 s in 15 s", j)
	}
	write(strings.Repeat("x", 10000)) // no newline: bounded
	if len(c.partial) > 4096 {
		t.Errorf("kept %d bytes of a line without an end", len(c.partial))
	}
}
