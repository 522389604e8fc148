package client

import (
	"errors"
	"path"
	"strings"
	"testing"
	"unicode/utf8"

	cgroup1stats "github.com/containerd/cgroups/v3/cgroup1/stats"
	"google.golang.org/protobuf/proto"

	"github.com/huskrt/husk/agent/api"
)

// TestDecoders runs each reply decoder over good and bad replies: a bad
// one is an error wrapping ErrBadReply, never a value.
func TestDecoders(t *testing.T) {
	manyPids := make([]uint32, MaxPids+1)
	for i := range manyPids {
		manyPids[i] = uint32(i + 1)
	}
	manyIDs := make([]string, MaxOOMs+1)
	for i := range manyIDs {
		manyIDs[i] = "c"
	}
	v1, err := proto.Marshal(&cgroup1stats.Metrics{Pids: &cgroup1stats.PidsStat{Current: 1}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		decode func() error
		ok     bool
	}{
		{"check", dec(decodeCheck, &api.CheckResponse{ProtocolVersion: 1, AgentVersion: "v1", KernelRelease: "6.1.0"}), true},
		{"check without boot time", dec(decodeCheck, &api.CheckResponse{ProtocolVersion: 1}), true},
		{"check of protocol 0", dec(decodeCheck, &api.CheckResponse{}), false},
		{"check with a long version", dec(decodeCheck, &api.CheckResponse{ProtocolVersion: 1, AgentVersion: strings.Repeat("v", MaxText+1)}), false},
		{"check with a 256-byte version", dec(decodeCheck, &api.CheckResponse{ProtocolVersion: 1, AgentVersion: strings.Repeat("v", MaxText)}), true},
		{"check with a control character", dec(decodeCheck, &api.CheckResponse{ProtocolVersion: 1, KernelRelease: "6.1\n0"}), false},
		{"check with invalid UTF-8", dec(decodeCheck, &api.CheckResponse{ProtocolVersion: 1, AgentVersion: "\xff"}), false},
		{"check with a boot before 1970", dec(decodeCheck, &api.CheckResponse{ProtocolVersion: 1, BootTimeUnixNano: -1}), false},

		{"pid 1", func() error { _, err := decodePid(1); return err }, true},
		{"pid max", func() error { _, err := decodePid(MaxPid); return err }, true},
		{"pid 0", func() error { _, err := decodePid(0); return err }, false},
		{"pid over max", func() error { _, err := decodePid(MaxPid + 1); return err }, false},

		{"exit 0", dec(decodeWait, &api.WaitProcessResponse{Exited: true, ExitStatus: 0, Pid: 1, ExitedAtUnixNano: 1}), true},
		{"exit 255", dec(decodeWait, &api.WaitProcessResponse{Exited: true, ExitStatus: 255, Pid: 1, ExitedAtUnixNano: 1}), true},
		{"exit 256", dec(decodeWait, &api.WaitProcessResponse{Exited: true, ExitStatus: 256, Pid: 1, ExitedAtUnixNano: 1}), false},
		{"exit -1", dec(decodeWait, &api.WaitProcessResponse{Exited: true, ExitStatus: -1, Pid: 1, ExitedAtUnixNano: 1}), false},
		{"exit of pid 0", dec(decodeWait, &api.WaitProcessResponse{Exited: true, Pid: 0, ExitedAtUnixNano: 1}), false},
		{"exit at no time", dec(decodeWait, &api.WaitProcessResponse{Exited: true, Pid: 1}), false},
		{"not exited, garbage ignored", dec(decodeWait, &api.WaitProcessResponse{ExitStatus: -7}), true},

		{"stats v1", dec(decodeStats, &api.StatsContainerResponse{TypeUrl: MetricsV1TypeURL, Value: v1}), true},
		{"stats, empty", dec(decodeStats, &api.StatsContainerResponse{TypeUrl: MetricsV2TypeURL}), true},
		{"stats with a type.googleapis.com prefix", dec(decodeStats, &api.StatsContainerResponse{TypeUrl: "type.googleapis.com/" + MetricsV1TypeURL, Value: v1}), false},
		{"stats of no type", dec(decodeStats, &api.StatsContainerResponse{Value: v1}), false},
		{"stats over 1 MiB", dec(decodeStats, &api.StatsContainerResponse{TypeUrl: MetricsV2TypeURL, Value: make([]byte, MaxStats+1)}), false},
		{"stats that do not decode", dec(decodeStats, &api.StatsContainerResponse{TypeUrl: MetricsV2TypeURL, Value: []byte{0x0a, 0xff}}), false},

		{"pids", dec(decodePids, &api.ListPidsResponse{Pids: []uint32{1, 2}}), true},
		{"no pids", dec(decodePids, &api.ListPidsResponse{}), true},
		{"pids at the bound", dec(decodePids, &api.ListPidsResponse{Pids: manyPids[:MaxPids]}), true},
		{"too many pids", dec(decodePids, &api.ListPidsResponse{Pids: manyPids}), false},
		{"pid 0 listed", dec(decodePids, &api.ListPidsResponse{Pids: []uint32{0}}), false},
		{"pid listed twice", dec(decodePids, &api.ListPidsResponse{Pids: []uint32{5, 5}}), false},

		{"ooms", dec(decodeOOMs, &api.WaitOOMResponse{ContainerIds: []string{"a", "b.c_d-e"}}), true},
		{"ooms at the bound", dec(decodeOOMs, &api.WaitOOMResponse{ContainerIds: manyIDs[:MaxOOMs]}), true},
		{"too many ooms", dec(decodeOOMs, &api.WaitOOMResponse{ContainerIds: manyIDs}), false},
		{"oom of an empty id", dec(decodeOOMs, &api.WaitOOMResponse{ContainerIds: []string{""}}), false},
		{"oom of a 255-character id", dec(decodeOOMs, &api.WaitOOMResponse{ContainerIds: []string{strings.Repeat("a", MaxID)}}), true},
		{"oom of a 256-character id", dec(decodeOOMs, &api.WaitOOMResponse{ContainerIds: []string{strings.Repeat("a", MaxID+1)}}), false},
		{"oom of an id with a slash", dec(decodeOOMs, &api.WaitOOMResponse{ContainerIds: []string{"a/b"}}), false},

		{"guest time", dec(decodeGuestTime, &api.GuestTimeResponse{UnixNano: 1}), true},
		{"guest time 0", dec(decodeGuestTime, &api.GuestTimeResponse{}), false},
		{"guest time before 1970", dec(decodeGuestTime, &api.GuestTimeResponse{UnixNano: -1}), false},
	} {
		err := tc.decode()
		switch {
		case tc.ok && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case !tc.ok && !errors.Is(err, ErrBadReply):
			t.Errorf("%s: %v, want ErrBadReply", tc.name, err)
		}
	}
}

// dec adapts a decoder to the table.
func dec[R any, T any](decode func(R) (T, error), r R) func() error {
	return func() error { _, err := decode(r); return err }
}

// FuzzReplyValidation feeds random bytes to every response message's
// Unmarshal, then to its decoder: no panic, and what a decoder accepts
// keeps its bounds.
func FuzzReplyValidation(f *testing.F) {
	for _, m := range []proto.Message{
		&api.CheckResponse{ProtocolVersion: 1, AgentVersion: "v1", BootTimeUnixNano: 5},
		&api.WaitProcessResponse{Exited: true, ExitStatus: 3, ExitedAtUnixNano: 9, Pid: 7},
		validStats(),
		&api.ListPidsResponse{Pids: []uint32{1, 2, 3}},
		&api.WaitOOMResponse{ContainerIds: []string{"c1"}},
		&api.GuestTimeResponse{UnixNano: 11},
		&api.StartContainerResponse{Pid: 4},
		&api.SyncVolumeResponse{Path: "/run/husk/volumes/v-1"},
	} {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0x0a, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		var check api.CheckResponse
		if proto.Unmarshal(b, &check) == nil {
			if r, err := decodeCheck(&check); err == nil && (r.ProtocolVersion == 0 || len(r.AgentVersion) > MaxText || len(r.KernelRelease) > MaxText) {
				t.Fatalf("accepted %+v", r)
			}
		}
		var wait api.WaitProcessResponse
		if proto.Unmarshal(b, &wait) == nil {
			if r, err := decodeWait(&wait); err == nil && r.Exited && (r.ExitStatus > 255 || r.Pid == 0 || r.Pid > MaxPid) {
				t.Fatalf("accepted %+v", r)
			}
		}
		var stats api.StatsContainerResponse
		if proto.Unmarshal(b, &stats) == nil {
			if r, err := decodeStats(&stats); err == nil && (len(r.Value) > MaxStats || r.Metrics == nil || metricsTypes[r.TypeURL] == nil) {
				t.Fatalf("accepted %+v", r)
			}
		}
		var pids api.ListPidsResponse
		if proto.Unmarshal(b, &pids) == nil {
			if r, err := decodePids(&pids); err == nil {
				if len(r) > MaxPids {
					t.Fatalf("accepted %d pids", len(r))
				}
				for _, p := range r {
					if p == 0 || p > MaxPid {
						t.Fatalf("accepted pid %d", p)
					}
				}
			}
		}
		var ooms api.WaitOOMResponse
		if proto.Unmarshal(b, &ooms) == nil {
			if r, err := decodeOOMs(&ooms); err == nil {
				for _, id := range r {
					if !validID(id) {
						t.Fatalf("accepted id %q", id)
					}
				}
			}
		}
		var gt api.GuestTimeResponse
		if proto.Unmarshal(b, &gt) == nil {
			if r, err := decodeGuestTime(&gt); err == nil && r.UnixNano() <= 0 {
				t.Fatalf("accepted %v", r)
			}
		}
		var start api.StartContainerResponse
		if proto.Unmarshal(b, &start) == nil {
			if p, err := decodePid(start.GetPid()); err == nil && (p == 0 || p > MaxPid) {
				t.Fatalf("accepted pid %d", p)
			}
		}
		var vol api.SyncVolumeResponse
		if proto.Unmarshal(b, &vol) == nil {
			if p, err := decodeVolumePath(&vol); err == nil &&
				(len(p) > maxVolumePath || !strings.HasPrefix(p, "/") || p == "/" || path.Clean(p) != p || !utf8.ValidString(p) || strings.ContainsAny(p, "\x00\n")) {
				t.Fatalf("accepted volume path %q", p)
			}
		}
	})
}
