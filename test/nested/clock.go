package nested

import (
	"bytes"
	"fmt"
	"strconv"
	"sync"
	"time"
)

// A jump of the outer guest's clock: under QEMU's TCG the emulated guest's
// clock has been seen to leap two days ahead in one step (containerd's
// own log went from one timestamp to one 50 hours later, and every
// deadline in the guest expired at once, failing a scenario that nothing
// of husk's had failed). The host cannot stop it, but it can see it: the
// outer init prints its uptime every clockTickSec seconds (clockMarker
// lines), and clockWatch compares each step of that uptime with the
// host's own time between the two lines. (Variables for the test.)
var (
	clockTickSec = 15
	// clockSlack is how far the guest's uptime may run ahead of the host's
	// time between two ticks before it counts as a jump: far above what
	// scheduling and console buffering explain.
	clockSlack = 60 * time.Second
)

// clockMarker starts the outer init's uptime lines; they are not the
// scenario's lines (Lines ignores them).
const clockMarker = "HUSK-CLOCK: up "

// clockWatch reads the console as it comes (an io.Writer) and notes the
// first jump of the guest's clock.
type clockWatch struct {
	now func() time.Time

	mu       sync.Mutex
	partial  []byte
	lastUp   float64
	lastHost time.Time
	seen     bool
	jump     string
}

func newClockWatch() *clockWatch { return &clockWatch{now: time.Now} }

func (c *clockWatch) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	c.partial = append(c.partial, p...)
	for {
		i := bytes.IndexByte(c.partial, '\n')
		if i < 0 {
			break
		}
		c.line(bytes.TrimSpace(c.partial[:i]), now)
		c.partial = c.partial[i+1:]
	}
	if len(c.partial) > 4096 { // a console with no newline: keep no more
		c.partial = c.partial[len(c.partial)-4096:]
	}
	return len(p), nil
}

func (c *clockWatch) line(l []byte, now time.Time) {
	i := bytes.Index(l, []byte(clockMarker))
	if i < 0 {
		return
	}
	up, err := strconv.ParseFloat(string(l[i+len(clockMarker):]), 64)
	if err != nil {
		return
	}
	if c.seen && c.jump == "" {
		guest := time.Duration((up - c.lastUp) * float64(time.Second))
		host := now.Sub(c.lastHost)
		if guest-host > clockSlack {
			c.jump = fmt.Sprintf("the outer guest's uptime moved %v (%.0f s → %.0f s) in %v of the host's time",
				guest.Round(time.Second), c.lastUp, up, host.Round(time.Second))
		}
	}
	c.lastUp, c.lastHost, c.seen = up, now, true
}

// Jump says how the guest's clock jumped, "" when it did not.
func (c *clockWatch) Jump() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.jump
}

// clockTicker is the outer init's snippet that prints its uptime every
// clockTickSec seconds, in the background, until the guest powers off.
func clockTicker() string {
	return fmt.Sprintf("( while :; do echo \"%s$(cut -d' ' -f1 /proc/uptime)\"; sleep %d; done ) &\n", clockMarker, clockTickSec)
}
