package client

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/containerd/errdefs"
	"google.golang.org/protobuf/proto"

	"github.com/huskrt/husk/agent/api"
)

// Rootfs is the disk a container's root filesystem is on.
type Rootfs struct {
	// DiskSerial is the virtio-blk serial the host gave the disk. Empty:
	// no disk, the spec's root is already in the guest (the other fields
	// are then not sent).
	DiskSerial string
	FSType     string   // "erofs", "ext4", ...
	Options    []string // mount options
	ReadOnly   bool
}

// Stdio names the streams (api.NewStreamID, attached on api.StreamPort) a
// process's stdio goes to; 0 is /dev/null.
type Stdio struct {
	Stdin, Stdout, Stderr uint64
	Terminal              bool
}

// CreateContainerRequest describes a container to create.
type CreateContainerRequest struct {
	ContainerID string
	Spec        []byte // the OCI runtime spec, as JSON
	Rootfs      Rootfs
	Stdio       Stdio
}

// ExecProcessRequest describes a process to prepare in a container.
type ExecProcessRequest struct {
	ContainerID string
	ExecID      string
	Process     []byte // the OCI process, as JSON
	Stdio       Stdio
}

func (s Stdio) proto() *api.Stdio {
	return &api.Stdio{Stdin: s.Stdin, Stdout: s.Stdout, Stderr: s.Stderr, Terminal: s.Terminal}
}

func (r Rootfs) proto() *api.Rootfs {
	if r.DiskSerial == "" {
		return nil
	}
	return &api.Rootfs{DiskSerial: r.DiskSerial, Fstype: r.FSType, Options: r.Options, Readonly: r.ReadOnly}
}

// pollTimeout is a long-poll's timeout in the wire's milliseconds, and the
// time that adds to the call's deadline.
func pollTimeout(d time.Duration) (uint32, time.Duration) {
	if d <= 0 {
		return 0, 0
	}
	ms := min(d.Milliseconds(), math.MaxUint32)
	return uint32(ms), time.Duration(ms) * time.Millisecond
}

// Check asks the agent who it is. The caller compares ProtocolVersion with
// api.ProtocolVersion.
func (c *Client) Check(ctx context.Context) (CheckResult, error) {
	resp, err := call(ctx, c, "Check", 0, c.agent.Check, &api.CheckRequest{})
	if err != nil {
		return CheckResult{}, err
	}
	r, err := decodeCheck(resp)
	if err != nil {
		return CheckResult{}, fmt.Errorf("agent Check: %w", err)
	}
	return r, nil
}

// CreateSandbox prepares the guest for the pod sandboxID.
func (c *Client) CreateSandbox(ctx context.Context, sandboxID, hostname string) error {
	return c.CreateSandboxNetwork(ctx, sandboxID, hostname, nil)
}

// CreateSandboxNetwork is CreateSandbox with the pod's network, which the
// agent configures on the guest's NICs (nil: loopback only).
func (c *Client) CreateSandboxNetwork(ctx context.Context, sandboxID, hostname string, network *api.Network) error {
	if err := checkID("sandbox id", sandboxID); err != nil {
		return fmt.Errorf("agent CreateSandbox: %w", err)
	}
	_, err := call(ctx, c, "CreateSandbox", 0, c.agent.CreateSandbox, &api.CreateSandboxRequest{SandboxId: sandboxID, Hostname: hostname, Network: network})
	return err
}

// DestroySandbox tears down what CreateSandbox prepared.
func (c *Client) DestroySandbox(ctx context.Context, sandboxID string) error {
	if err := checkID("sandbox id", sandboxID); err != nil {
		return fmt.Errorf("agent DestroySandbox: %w", err)
	}
	_, err := call(ctx, c, "DestroySandbox", 0, c.agent.DestroySandbox, &api.DestroySandboxRequest{SandboxId: sandboxID})
	return err
}

// CreateContainer creates a container and returns its init process's pid.
func (c *Client) CreateContainer(ctx context.Context, req CreateContainerRequest) (pid uint32, err error) {
	if err := checkID("container id", req.ContainerID); err != nil {
		return 0, fmt.Errorf("agent CreateContainer: %w", err)
	}
	if len(req.Spec) == 0 {
		return 0, fmt.Errorf("agent CreateContainer: no spec: %w", errdefs.ErrInvalidArgument)
	}
	resp, err := call(ctx, c, "CreateContainer", 0, c.agent.CreateContainer, &api.CreateContainerRequest{
		ContainerId: req.ContainerID,
		Spec:        req.Spec,
		Rootfs:      req.Rootfs.proto(),
		Stdio:       req.Stdio.proto(),
	})
	if err != nil {
		return 0, err
	}
	return pidResult("CreateContainer", resp.GetPid())
}

// StartContainer starts a created container and returns its init
// process's pid.
func (c *Client) StartContainer(ctx context.Context, containerID string) (pid uint32, err error) {
	if err := checkID("container id", containerID); err != nil {
		return 0, fmt.Errorf("agent StartContainer: %w", err)
	}
	resp, err := call(ctx, c, "StartContainer", 0, c.agent.StartContainer, &api.StartContainerRequest{ContainerId: containerID})
	if err != nil {
		return 0, err
	}
	return pidResult("StartContainer", resp.GetPid())
}

// ExecProcess prepares a process in a running container; StartProcess
// starts it.
func (c *Client) ExecProcess(ctx context.Context, req ExecProcessRequest) error {
	if err := checkProcessIDs(req.ContainerID, req.ExecID, true); err != nil {
		return fmt.Errorf("agent ExecProcess: %w", err)
	}
	if len(req.Process) == 0 {
		return fmt.Errorf("agent ExecProcess: no process: %w", errdefs.ErrInvalidArgument)
	}
	_, err := call(ctx, c, "ExecProcess", 0, c.agent.ExecProcess, &api.ExecProcessRequest{
		ContainerId: req.ContainerID,
		ExecId:      req.ExecID,
		Process:     req.Process,
		Stdio:       req.Stdio.proto(),
	})
	return err
}

// StartProcess starts a process ExecProcess prepared and returns its pid.
func (c *Client) StartProcess(ctx context.Context, containerID, execID string) (pid uint32, err error) {
	if err := checkProcessIDs(containerID, execID, true); err != nil {
		return 0, fmt.Errorf("agent StartProcess: %w", err)
	}
	resp, err := call(ctx, c, "StartProcess", 0, c.agent.StartProcess, &api.StartProcessRequest{ContainerId: containerID, ExecId: execID})
	if err != nil {
		return 0, err
	}
	return pidResult("StartProcess", resp.GetPid())
}

// SignalProcess sends signal to a process (execID "" is the init
// process), or with all to every process of the container.
func (c *Client) SignalProcess(ctx context.Context, containerID, execID string, signal uint32, all bool) error {
	if err := checkProcessIDs(containerID, execID, false); err != nil {
		return fmt.Errorf("agent SignalProcess: %w", err)
	}
	_, err := call(ctx, c, "SignalProcess", 0, c.agent.SignalProcess, &api.SignalProcessRequest{ContainerId: containerID, ExecId: execID, Signal: signal, All: all})
	return err
}

// WaitProcess waits up to timeout (in whole milliseconds) for a process to
// exit; a result with Exited false means it has not yet: call again. The
// call's deadline is timeout plus Options.CallTimeout.
func (c *Client) WaitProcess(ctx context.Context, containerID, execID string, timeout time.Duration) (WaitResult, error) {
	if err := checkProcessIDs(containerID, execID, false); err != nil {
		return WaitResult{}, fmt.Errorf("agent WaitProcess: %w", err)
	}
	ms, extra := pollTimeout(timeout)
	resp, err := call(ctx, c, "WaitProcess", extra, c.agent.WaitProcess, &api.WaitProcessRequest{ContainerId: containerID, ExecId: execID, TimeoutMs: ms})
	if err != nil {
		return WaitResult{}, err
	}
	r, err := decodeWait(resp)
	if err != nil {
		return WaitResult{}, fmt.Errorf("agent WaitProcess: %w", err)
	}
	return r, nil
}

// CloseStdin closes a process's stdin.
func (c *Client) CloseStdin(ctx context.Context, containerID, execID string) error {
	if err := checkProcessIDs(containerID, execID, false); err != nil {
		return fmt.Errorf("agent CloseStdin: %w", err)
	}
	_, err := call(ctx, c, "CloseStdin", 0, c.agent.CloseStdin, &api.CloseStdinRequest{ContainerId: containerID, ExecId: execID})
	return err
}

// ResizePty sets the size of a process's terminal.
func (c *Client) ResizePty(ctx context.Context, containerID, execID string, width, height uint32) error {
	if err := checkProcessIDs(containerID, execID, false); err != nil {
		return fmt.Errorf("agent ResizePty: %w", err)
	}
	_, err := call(ctx, c, "ResizePty", 0, c.agent.ResizePty, &api.ResizePtyRequest{ContainerId: containerID, ExecId: execID, Width: width, Height: height})
	return err
}

// DeleteProcess forgets an exited exec process.
func (c *Client) DeleteProcess(ctx context.Context, containerID, execID string) error {
	if err := checkProcessIDs(containerID, execID, true); err != nil {
		return fmt.Errorf("agent DeleteProcess: %w", err)
	}
	_, err := call(ctx, c, "DeleteProcess", 0, c.agent.DeleteProcess, &api.DeleteProcessRequest{ContainerId: containerID, ExecId: execID})
	return err
}

// DeleteContainer removes a stopped container.
func (c *Client) DeleteContainer(ctx context.Context, containerID string) error {
	if err := checkID("container id", containerID); err != nil {
		return fmt.Errorf("agent DeleteContainer: %w", err)
	}
	_, err := call(ctx, c, "DeleteContainer", 0, c.agent.DeleteContainer, &api.DeleteContainerRequest{ContainerId: containerID})
	return err
}

// PauseContainer freezes a container.
func (c *Client) PauseContainer(ctx context.Context, containerID string) error {
	if err := checkID("container id", containerID); err != nil {
		return fmt.Errorf("agent PauseContainer: %w", err)
	}
	_, err := call(ctx, c, "PauseContainer", 0, c.agent.PauseContainer, &api.PauseContainerRequest{ContainerId: containerID})
	return err
}

// ResumeContainer thaws a paused container.
func (c *Client) ResumeContainer(ctx context.Context, containerID string) error {
	if err := checkID("container id", containerID); err != nil {
		return fmt.Errorf("agent ResumeContainer: %w", err)
	}
	_, err := call(ctx, c, "ResumeContainer", 0, c.agent.ResumeContainer, &api.ResumeContainerRequest{ContainerId: containerID})
	return err
}

// UpdateContainer gives a container new resources (OCI LinuxResources, as
// JSON).
func (c *Client) UpdateContainer(ctx context.Context, containerID string, resources []byte) error {
	if err := checkID("container id", containerID); err != nil {
		return fmt.Errorf("agent UpdateContainer: %w", err)
	}
	_, err := call(ctx, c, "UpdateContainer", 0, c.agent.UpdateContainer, &api.UpdateContainerRequest{ContainerId: containerID, Resources: resources})
	return err
}

// StatsContainer returns a container's cgroup metrics, checked to be
// containerd's cgroups v1 or v2 metrics message.
func (c *Client) StatsContainer(ctx context.Context, containerID string) (Stats, error) {
	if err := checkID("container id", containerID); err != nil {
		return Stats{}, fmt.Errorf("agent StatsContainer: %w", err)
	}
	resp, err := call(ctx, c, "StatsContainer", 0, c.agent.StatsContainer, &api.StatsContainerRequest{ContainerId: containerID})
	if err != nil {
		return Stats{}, err
	}
	s, err := decodeStats(resp)
	if err != nil {
		return Stats{}, fmt.Errorf("agent StatsContainer: %w", err)
	}
	return s, nil
}

// ListPids returns the guest pids of a container's processes.
func (c *Client) ListPids(ctx context.Context, containerID string) ([]uint32, error) {
	if err := checkID("container id", containerID); err != nil {
		return nil, fmt.Errorf("agent ListPids: %w", err)
	}
	resp, err := call(ctx, c, "ListPids", 0, c.agent.ListPids, &api.ListPidsRequest{ContainerId: containerID})
	if err != nil {
		return nil, err
	}
	pids, err := decodePids(resp)
	if err != nil {
		return nil, fmt.Errorf("agent ListPids: %w", err)
	}
	return pids, nil
}

// WaitOOM waits up to timeout for OOM kills and returns the containers
// that had one since the previous call (none at the timeout). The call's
// deadline is timeout plus Options.CallTimeout.
func (c *Client) WaitOOM(ctx context.Context, timeout time.Duration) ([]string, error) {
	ms, extra := pollTimeout(timeout)
	resp, err := call(ctx, c, "WaitOOM", extra, c.agent.WaitOOM, &api.WaitOOMRequest{TimeoutMs: ms})
	if err != nil {
		return nil, err
	}
	ids, err := decodeOOMs(resp)
	if err != nil {
		return nil, fmt.Errorf("agent WaitOOM: %w", err)
	}
	return ids, nil
}

// GuestTime sets the guest's clock to set, unless set is the zero time,
// and returns the guest's clock.
func (c *Client) GuestTime(ctx context.Context, set time.Time) (time.Time, error) {
	var ns int64
	if !set.IsZero() {
		// UnixNano is defined from 1678 to 2262; 0 and below mean "unset"
		// or nothing on the wire.
		if set.Year() < 1970 || set.Year() > 2261 || set.UnixNano() <= 0 {
			return time.Time{}, fmt.Errorf("agent GuestTime: cannot set the guest's clock to %v: %w", set, errdefs.ErrInvalidArgument)
		}
		ns = set.UnixNano()
	}
	resp, err := call(ctx, c, "GuestTime", 0, c.agent.GuestTime, &api.GuestTimeRequest{SetUnixNano: ns})
	if err != nil {
		return time.Time{}, err
	}
	t, err := decodeGuestTime(resp)
	if err != nil {
		return time.Time{}, fmt.Errorf("agent GuestTime: %w", err)
	}
	return t, nil
}

// pidResult checks the pid a call returned.
func pidResult(name string, pid uint32) (uint32, error) {
	if _, err := decodePid(pid); err != nil {
		return 0, fmt.Errorf("agent %s: %w", name, err)
	}
	return pid, nil
}

// checkProcessIDs checks a container id and an exec id, which may be
// empty (the init process) unless required.
func checkProcessIDs(containerID, execID string, execRequired bool) error {
	if err := checkID("container id", containerID); err != nil {
		return err
	}
	if execRequired {
		return checkID("exec id", execID)
	}
	return checkExecID(execID)
}

// MaxVolumeRequest bounds a SyncVolume request on the wire: ttrpc's 4 MiB
// less room for its envelope. The agent bounds file data at 3 MiB.
const MaxVolumeRequest = 4<<20 - 4<<10

// SyncVolume has the agent bring its copy of volume id to entries (the
// host tree, root first, parents before children), removing what they do
// not list when complete, and returns the copy's path in the guest.
func (c *Client) SyncVolume(ctx context.Context, id string, entries []*api.FileEntry, complete bool) (string, error) {
	if !validVolumeID(id) {
		return "", fmt.Errorf("agent SyncVolume: volume id %q: not 1 to 64 characters of [A-Za-z0-9_.-] other than . and ..: %w", truncate(id, MaxText), errdefs.ErrInvalidArgument)
	}
	req := &api.SyncVolumeRequest{VolumeId: id, Entries: entries, Complete: complete}
	if n := proto.Size(req); n > MaxVolumeRequest {
		return "", fmt.Errorf("agent SyncVolume: volume %s: a request of %d bytes, over the %d one may have: %w", id, n, MaxVolumeRequest, errdefs.ErrInvalidArgument)
	}
	resp, err := call(ctx, c, "SyncVolume", 0, c.agent.SyncVolume, req)
	if err != nil {
		return "", err
	}
	p, err := decodeVolumePath(resp)
	if err != nil {
		return "", fmt.Errorf("agent SyncVolume: %w", err)
	}
	return p, nil
}
