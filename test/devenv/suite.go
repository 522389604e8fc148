package devenv

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"
)

// Suite is what a tier-2 test package's TestMain sets up: a bench, or the
// reason there is none, and a directory of its own.
type Suite struct {
	// Bench is the package's containerd; nil when Skip says why not.
	Bench *Containerd
	// Skip is why the suite cannot run here (no root, a missing tool): its
	// tests then skip with it instead of failing.
	Skip string
	// Dir holds what setup made (builds, rootfs, the bench); removed at the
	// end.
	Dir string
}

// RunSuite runs m's tests around setup, for TestMain. A setup error fails
// the run unless setup set s.Skip; whatever setup made — a started bench
// included — is torn down in every case.
func RunSuite(m *testing.M, name string, s *Suite, setup func(*Suite) error) int {
	code := 0
	if err := setup(s); err != nil && s.Skip == "" {
		fmt.Fprintf(os.Stderr, "%s setup: %v\n", name, err)
		code = 1
	} else {
		code = m.Run()
	}
	if s.Bench != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := s.Bench.Stop(ctx); err != nil {
			fmt.Fprintf(os.Stderr, "%s teardown: %v\n", name, err)
			code = 1
		}
	}
	if s.Dir != "" {
		_ = os.RemoveAll(s.Dir)
	}
	return code
}
