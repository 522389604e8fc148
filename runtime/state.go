package runtime

import (
	"fmt"

	"github.com/containerd/errdefs"
)

// State is where a process is in its lifecycle. The init process's state is
// the task's state as containerd sees it.
type State int

// The lifecycle: Created → Running ⇄ Paused → Stopped → Deleted. A created
// process can also be killed (→ Stopped when it exits) or deleted directly.
const (
	Created State = iota
	Running
	Paused
	Stopped
	Deleted
)

func (s State) String() string {
	switch s {
	case Created:
		return "created"
	case Running:
		return "running"
	case Paused:
		return "paused"
	case Stopped:
		return "stopped"
	case Deleted:
		return "deleted"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Op is a lifecycle operation asked of a process or its container.
type Op string

// The operations the task API can ask for.
const (
	OpStart   Op = "start"
	OpKill    Op = "kill"
	OpPause   Op = "pause"
	OpResume  Op = "resume"
	OpExec    Op = "exec"
	OpUpdate  Op = "update"
	OpResize  Op = "resize pty"
	OpCloseIO Op = "close io"
	OpDelete  Op = "delete"
	OpExit    Op = "exit" // the process ended on its own or by signal
)

// transitions lists, for each state, the operations allowed in it and the
// state each leads to. Anything missing is an illegal move.
var transitions = map[State]map[Op]State{
	Created: {
		OpStart:   Running,
		OpKill:    Created, // the exit that follows moves it to Stopped
		OpResize:  Created,
		OpCloseIO: Created,
		OpUpdate:  Created,
		OpDelete:  Deleted,
		OpExit:    Stopped,
	},
	Running: {
		OpKill:    Running,
		OpPause:   Paused,
		OpExec:    Running,
		OpUpdate:  Running,
		OpResize:  Running,
		OpCloseIO: Running,
		OpExit:    Stopped,
	},
	Paused: {
		OpKill:    Paused, // delivered when resumed, SIGKILL at once
		OpResume:  Running,
		OpUpdate:  Paused,
		OpResize:  Paused,
		OpCloseIO: Paused,
		OpExit:    Stopped,
	},
	Stopped: {
		OpDelete:  Deleted,
		OpCloseIO: Stopped,
	},
	Deleted: {},
}

// Next returns the state op leads to from s, or an error classified with
// errdefs saying why the move is illegal.
func (s State) Next(op Op) (State, error) {
	if next, ok := transitions[s][op]; ok {
		return next, nil
	}
	switch s {
	case Deleted:
		return s, fmt.Errorf("cannot %s: process is deleted: %w", op, errdefs.ErrNotFound)
	case Stopped:
		if op == OpKill {
			// containerd's runc shim answers NotFound here; ctr relies on it
			// to treat "kill an exited task" as done.
			return s, fmt.Errorf("cannot kill: process already finished: %w", errdefs.ErrNotFound)
		}
	}
	return s, fmt.Errorf("cannot %s a %s process: %w", op, s, errdefs.ErrFailedPrecondition)
}
