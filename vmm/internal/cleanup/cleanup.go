// Package cleanup unwinds multi-step setup in reverse when a later step
// fails, in the style of gVisor's pkg/cleanup:
//
//	var cu cleanup.Cleanup
//	defer cu.Clean()
//	fd, err := open(); if err != nil { return err }
//	cu.Add(func() { close(fd) })
//	... more steps, each adding its undo ...
//	cu.Release() // success: keep everything
package cleanup

// Cleanup holds undo functions. The zero value is ready to use. It is not
// safe for concurrent use.
type Cleanup struct {
	fns []func()
}

// Add registers f to run on Clean, before everything added earlier.
func (c *Cleanup) Add(f func()) { c.fns = append(c.fns, f) }

// Clean runs the registered functions in reverse order of Add and forgets
// them. It does nothing after Release.
func (c *Cleanup) Clean() {
	for i := len(c.fns) - 1; i >= 0; i-- {
		c.fns[i]()
	}
	c.fns = nil
}

// Release forgets the registered functions without running them and
// returns one function that runs them all, for a caller that takes over
// ownership (a Close method, say).
func (c *Cleanup) Release() func() {
	fns := c.fns
	c.fns = nil
	return func() {
		for i := len(fns) - 1; i >= 0; i-- {
			fns[i]()
		}
	}
}
