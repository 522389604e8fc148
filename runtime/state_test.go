package runtime

import (
	"errors"
	"testing"

	"github.com/containerd/errdefs"
)

func TestStateNext(t *testing.T) {
	tests := []struct {
		from State
		op   Op
		want State
		err  error
	}{
		{Created, OpStart, Running, nil},
		{Created, OpDelete, Deleted, nil},
		{Created, OpKill, Created, nil},
		{Created, OpExit, Stopped, nil},
		{Created, OpPause, Created, errdefs.ErrFailedPrecondition},
		{Created, OpExec, Created, errdefs.ErrFailedPrecondition},
		{Running, OpStart, Running, errdefs.ErrFailedPrecondition},
		{Running, OpPause, Paused, nil},
		{Running, OpResume, Running, errdefs.ErrFailedPrecondition},
		{Running, OpExec, Running, nil},
		{Running, OpDelete, Running, errdefs.ErrFailedPrecondition},
		{Running, OpExit, Stopped, nil},
		{Paused, OpResume, Running, nil},
		{Paused, OpPause, Paused, errdefs.ErrFailedPrecondition},
		{Paused, OpExec, Paused, errdefs.ErrFailedPrecondition},
		{Paused, OpKill, Paused, nil},
		{Paused, OpExit, Stopped, nil},
		{Stopped, OpKill, Stopped, errdefs.ErrNotFound},
		{Stopped, OpStart, Stopped, errdefs.ErrFailedPrecondition},
		{Stopped, OpDelete, Deleted, nil},
		{Stopped, OpExit, Stopped, errdefs.ErrFailedPrecondition},
		{Deleted, OpDelete, Deleted, errdefs.ErrNotFound},
		{Deleted, OpKill, Deleted, errdefs.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.from.String()+"/"+string(tt.op), func(t *testing.T) {
			got, err := tt.from.Next(tt.op)
			if tt.err == nil && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tt.err != nil && !errors.Is(err, tt.err) {
				t.Fatalf("error = %v, want %v", err, tt.err)
			}
			if got != tt.want {
				t.Fatalf("next = %s, want %s", got, tt.want)
			}
		})
	}
}
