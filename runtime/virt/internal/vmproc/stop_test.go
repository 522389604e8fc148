package vmproc

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestStop(t *testing.T) {
	const grace = 50 * time.Millisecond
	closed := func() chan struct{} { c := make(chan struct{}); close(c); return c }
	t.Run("already ended", func(t *testing.T) {
		asked := false
		err := Stop(context.Background(), grace, closed(), func(context.Context) { asked = true }, func(error) { t.Error("killed") })
		if err != nil || asked {
			t.Errorf("err %v, asked %v", err, asked)
		}
	})
	t.Run("stops when asked", func(t *testing.T) {
		done := make(chan struct{})
		err := Stop(context.Background(), time.Minute, done, func(context.Context) { close(done) }, func(error) { t.Error("killed") })
		if err != nil {
			t.Error(err)
		}
	})
	t.Run("killed after the grace", func(t *testing.T) {
		done := make(chan struct{})
		var once sync.Once
		var why error
		err := Stop(context.Background(), grace, done, func(context.Context) {}, func(err error) {
			why = err
			once.Do(func() { close(done) })
		})
		if err != nil || why == nil || !strings.Contains(why.Error(), "did not stop within 50ms") {
			t.Errorf("err %v, kill's reason %v", err, why)
		}
	})
	t.Run("not reaped", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*grace)
		defer cancel()
		killed := false
		err := Stop(ctx, grace, make(chan struct{}), func(context.Context) {}, func(error) { killed = true })
		if !killed || !errors.Is(err, ErrNotReaped) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("killed %v, err %v", killed, err)
		}
	})
}
