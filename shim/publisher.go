package shim

import (
	"context"

	eventstypes "github.com/containerd/containerd/api/events"
	"github.com/containerd/containerd/v2/core/runtime"
	"github.com/containerd/containerd/v2/pkg/protobuf"
	"github.com/containerd/containerd/v2/pkg/shim"
	"github.com/containerd/containerd/v2/pkg/shutdown"

	"github.com/huskrt/husk/internal/logging"
	husk "github.com/huskrt/husk/runtime"
	"github.com/huskrt/husk/runtime/handler"
)

// publisher queues events for containerd and forwards them in order from
// one goroutine, so a slow containerd never blocks a task operation. It is
// also the runtime's Observer.
type publisher struct {
	ctx     context.Context
	events  chan any
	sd      shutdown.Service
	metrics *metrics
}

var _ husk.Observer = (*publisher)(nil)

func newPublisher(ctx context.Context, pub shim.Publisher, sd shutdown.Service, m *metrics) *publisher {
	p := &publisher{ctx: context.WithoutCancel(ctx), events: make(chan any, 128), sd: sd, metrics: m}
	go p.forward(pub)
	return p
}

func (p *publisher) send(e any) {
	select {
	case p.events <- e:
	case <-p.sd.Done():
	}
}

func (p *publisher) forward(pub shim.Publisher) {
	defer pub.Close()
	publish := func(e any) {
		if err := pub.Publish(p.ctx, runtime.GetTopic(e), e); err != nil {
			logging.L(p.ctx).Error("publishing event", "topic", runtime.GetTopic(e), "error", err)
		}
	}
	for {
		select {
		case e := <-p.events:
			publish(e)
		case <-p.sd.Done():
			for {
				select {
				case e := <-p.events:
					publish(e)
				default:
					return
				}
			}
		}
	}
}

// Started publishes TaskStart, or TaskExecStarted for an exec. The task
// calls it before the process's exit can be reported (see Observer).
func (p *publisher) Started(containerID, execID string, pid int) {
	if execID == "" {
		p.send(&eventstypes.TaskStart{ContainerID: containerID, Pid: uint32(pid)})
		return
	}
	p.send(&eventstypes.TaskExecStarted{ContainerID: containerID, ExecID: execID, Pid: uint32(pid)})
}

// Exited publishes TaskExit.
func (p *publisher) Exited(containerID, execID string, e handler.Exit) {
	id := execID
	if id == "" {
		id = containerID
	}
	p.metrics.exits.inc()
	p.send(&eventstypes.TaskExit{
		ContainerID: containerID,
		ID:          id,
		Pid:         uint32(e.Pid),
		ExitStatus:  uint32(e.Status),
		ExitedAt:    protobuf.ToTimestamp(e.At),
	})
}

// OOM publishes TaskOOM.
func (p *publisher) OOM(containerID string) {
	logging.L(p.ctx).Warn("container OOM-killed a process", "id", containerID)
	p.metrics.ooms.inc()
	p.send(&eventstypes.TaskOOM{ContainerID: containerID})
}
