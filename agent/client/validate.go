package client

import (
	"fmt"
	"path"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	cgroup1stats "github.com/containerd/cgroups/v3/cgroup1/stats"
	cgroup2stats "github.com/containerd/cgroups/v3/cgroup2/stats"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/huskrt/husk/agent/api"
)

// The bounds a reply must keep.
const (
	// MaxPid is the largest pid Linux hands out (PID_MAX_LIMIT on 64-bit).
	MaxPid = 1 << 22
	// MaxPids bounds ListPids' answer.
	MaxPids = 65536
	// MaxOOMs bounds WaitOOM's answer.
	MaxOOMs = 1024
	// MaxStats bounds StatsContainer's value.
	MaxStats = 1 << 20
	// MaxText bounds a string of a reply (versions, the kernel release).
	MaxText = 256
	// MaxID bounds an id (sandbox, container, exec).
	MaxID = 255
	// maxErrorMessage bounds the message of an agent's error, which ends up
	// in containerd's log and in what a user sees.
	maxErrorMessage = 1024
)

// The type urls of the metrics StatsContainer may return: containerd's
// cgroups v1 and v2 metrics messages, named as containerd's typeurl names
// them (the proto full name).
const (
	MetricsV1TypeURL = "io.containerd.cgroups.v1.Metrics"
	MetricsV2TypeURL = "io.containerd.cgroups.v2.Metrics"
)

// metricsTypes is the allow-list of StatsContainer's type urls, with the
// message each must decode into.
var metricsTypes = map[string]func() proto.Message{
	MetricsV1TypeURL: func() proto.Message { return &cgroup1stats.Metrics{} },
	MetricsV2TypeURL: func() proto.Message { return &cgroup2stats.Metrics{} },
}

// badReply returns an error wrapping ErrBadReply.
func badReply(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadReply, fmt.Sprintf(format, args...))
}

// CheckResult is what Check says about the agent.
type CheckResult struct {
	ProtocolVersion uint32 // the caller compares it with api.ProtocolVersion
	AgentVersion    string
	KernelRelease   string
	BootTime        time.Time // zero when the agent did not say
}

// WaitResult is a WaitProcess answer.
type WaitResult struct {
	// Exited is false when the wait timed out: call again.
	Exited bool
	// ExitStatus is the exit code, or 128+n for a death by signal n.
	ExitStatus uint32
	// ExitedAt is the guest's time of the exit.
	ExitedAt time.Time
	// Pid is the pid the process had.
	Pid uint32
}

// Stats is a container's cgroup metrics, as StatsContainer returned them.
type Stats struct {
	// TypeURL is MetricsV1TypeURL or MetricsV2TypeURL.
	TypeURL string
	// Value is the marshalled message, as an Any's value.
	Value []byte
	// Metrics is Value decoded: a *cgroup1stats.Metrics or a
	// *cgroup2stats.Metrics.
	Metrics proto.Message
}

func decodeCheck(r *api.CheckResponse) (CheckResult, error) {
	if r.GetProtocolVersion() == 0 {
		return CheckResult{}, badReply("protocol version 0")
	}
	if err := checkText("agent version", r.GetAgentVersion()); err != nil {
		return CheckResult{}, err
	}
	if err := checkText("kernel release", r.GetKernelRelease()); err != nil {
		return CheckResult{}, err
	}
	boot, err := decodeTime("boot time", r.GetBootTimeUnixNano(), false)
	if err != nil {
		return CheckResult{}, err
	}
	return CheckResult{
		ProtocolVersion: r.GetProtocolVersion(),
		AgentVersion:    r.GetAgentVersion(),
		KernelRelease:   r.GetKernelRelease(),
		BootTime:        boot,
	}, nil
}

func decodePid(pid uint32) (uint32, error) {
	if pid == 0 || pid > MaxPid {
		return 0, badReply("pid %d, not in [1, %d]", pid, MaxPid)
	}
	return pid, nil
}

func decodeWait(r *api.WaitProcessResponse) (WaitResult, error) {
	if !r.GetExited() {
		// The other fields mean nothing until the process exits.
		return WaitResult{}, nil
	}
	st := r.GetExitStatus()
	if st < 0 || st > 255 {
		return WaitResult{}, badReply("exit status %d, not in [0, 255]", st)
	}
	pid, err := decodePid(r.GetPid())
	if err != nil {
		return WaitResult{}, err
	}
	at, err := decodeTime("exit time", r.GetExitedAtUnixNano(), true)
	if err != nil {
		return WaitResult{}, err
	}
	return WaitResult{Exited: true, ExitStatus: uint32(st), ExitedAt: at, Pid: pid}, nil
}

func decodeStats(r *api.StatsContainerResponse) (Stats, error) {
	newMetrics, ok := metricsTypes[r.GetTypeUrl()]
	if !ok {
		return Stats{}, badReply("metrics of type %q, neither %q nor %q", truncate(r.GetTypeUrl(), MaxText), MetricsV1TypeURL, MetricsV2TypeURL)
	}
	v := r.GetValue()
	if len(v) > MaxStats {
		return Stats{}, badReply("metrics of %d bytes, over %d", len(v), MaxStats)
	}
	m := newMetrics()
	if err := proto.Unmarshal(v, m); err != nil {
		return Stats{}, badReply("metrics that are no %s: %v", r.GetTypeUrl(), err)
	}
	return Stats{TypeURL: r.GetTypeUrl(), Value: v, Metrics: m}, nil
}

func decodePids(r *api.ListPidsResponse) ([]uint32, error) {
	pids := r.GetPids()
	if len(pids) > MaxPids {
		return nil, badReply("%d pids, over %d", len(pids), MaxPids)
	}
	seen := make(map[uint32]struct{}, len(pids))
	for _, p := range pids {
		if _, err := decodePid(p); err != nil {
			return nil, err
		}
		if _, dup := seen[p]; dup {
			return nil, badReply("pid %d listed twice", p)
		}
		seen[p] = struct{}{}
	}
	return pids, nil
}

func decodeOOMs(r *api.WaitOOMResponse) ([]string, error) {
	ids := r.GetContainerIds()
	if len(ids) > MaxOOMs {
		return nil, badReply("%d container ids, over %d", len(ids), MaxOOMs)
	}
	for _, id := range ids {
		if !validID(id) {
			return nil, badReply("container id %q is not one", truncate(id, MaxText))
		}
	}
	return ids, nil
}

func decodeGuestTime(r *api.GuestTimeResponse) (time.Time, error) {
	return decodeTime("guest time", r.GetUnixNano(), true)
}

// maxVolumePath bounds the guest path of a volume (PATH_MAX).
const maxVolumePath = 4096

// decodeVolumePath checks the guest path SyncVolume answered: absolute,
// clean, printable UTF-8 (it goes into a spec and logs).
func decodeVolumePath(r *api.SyncVolumeResponse) (string, error) {
	p := r.GetPath()
	switch {
	case len(p) > maxVolumePath:
		return "", badReply("volume path of %d bytes, over %d", len(p), maxVolumePath)
	case !utf8.ValidString(p) || strings.IndexFunc(p, unicode.IsControl) >= 0:
		return "", badReply("volume path %q is not printable UTF-8", truncate(p, MaxText))
	case !path.IsAbs(p) || path.Clean(p) != p || p == "/":
		return "", badReply("volume path %q is not a clean absolute path below /", truncate(p, MaxText))
	}
	return p, nil
}

// validVolumeID reports whether id is a volume id: 1 to 64 characters of
// [A-Za-z0-9_.-], not . or ...
func validVolumeID(id string) bool {
	return len(id) <= 64 && id != "." && id != ".." && validID(id)
}

// decodeTime turns Unix nanoseconds into a time; 0 is the zero time
// unless required.
func decodeTime(what string, ns int64, required bool) (time.Time, error) {
	switch {
	case ns < 0 || (ns == 0 && required):
		return time.Time{}, badReply("%s %d, not a time after 1970", what, ns)
	case ns == 0:
		return time.Time{}, nil
	}
	return time.Unix(0, ns), nil
}

// checkText accepts a short, printable UTF-8 string: it goes into logs.
func checkText(what, s string) error {
	if len(s) > MaxText {
		return badReply("%s of %d bytes, over %d", what, len(s), MaxText)
	}
	if !utf8.ValidString(s) {
		return badReply("%s %q is not UTF-8", what, s)
	}
	if strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return badReply("%s %q holds control characters", what, s)
	}
	return nil
}

// validID reports whether id is 1 to MaxID characters of [A-Za-z0-9_.-].
func validID(id string) bool {
	if id == "" || len(id) > MaxID {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '.', c == '-':
		default:
			return false
		}
	}
	return true
}

// checkID refuses, before asking the agent, an id that is not one.
func checkID(what, id string) error {
	if !validID(id) {
		return fmt.Errorf("%s %q: not 1 to %d characters of [A-Za-z0-9_.-]: %w", what, truncate(id, MaxText), MaxID, errdefs.ErrInvalidArgument)
	}
	return nil
}

// checkExecID accepts the empty exec id (the init process) or an id.
func checkExecID(id string) error {
	if id == "" {
		return nil
	}
	return checkID("exec id", id)
}

// agentError turns an agent's error status into an errdefs error. Only
// the code and a bounded, printable message are kept: the details (Any
// messages errgrpc would decode) are the agent's to invent.
func agentError(st *status.Status) error {
	code := st.Code()
	if code == codes.OK || code > codes.Unauthenticated { // the last code gRPC defines
		code = codes.Unknown
	}
	msg := truncate(st.Message(), maxErrorMessage)
	msg = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) && r != '\n' && r != '\t' {
			return '?'
		}
		return r
	}, strings.ToValidUTF8(msg, "?"))
	return errgrpc.ToNative(status.New(code, msg).Err())
}

// truncate cuts s to at most n bytes, saying so.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
