package runtime

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/containerd/errdefs"

	"github.com/huskrt/husk/runtime/config"
	"github.com/huskrt/husk/runtime/handler"
)

// netHandler is a fake virt handler whose sandbox asks sandbox.network
// with found when set up and keeps what the hooks left.
type netHandler struct {
	vmHandler
	found handler.Network
	got   []handler.Network
}

func (h *netHandler) NewSandbox(ctx context.Context, req *handler.SandboxRequest) (handler.Sandbox, error) {
	n := h.found
	if err := req.Policy.Network(ctx, &n); err != nil {
		return nil, err
	}
	h.mu.Lock()
	h.got = append(h.got, n)
	h.mu.Unlock()
	return h.vmHandler.NewSandbox(ctx, req)
}

// TestSandboxNetworkHook: sandbox.network is asked with the pod's network
// as the handler found it; what a hook removes (an interface, one of its
// addresses, a route) is gone from what the handler keeps, a patch that
// does more than remove is refused, and a denial fails the pod.
func TestSandboxNetworkHook(t *testing.T) {
	found := handler.Network{Netns: "/var/run/netns/cni-1",
		Interfaces: []handler.Interface{
			{Name: "eth0", MAC: "02:42:0a:58:00:05", MTU: 1500, Addresses: []string{"10.88.0.5/16", "fd00::5/64"}},
			{Name: "net1", MAC: "02:42:0a:59:00:07", MTU: 9000, Addresses: []string{"10.89.0.7/24"}},
		},
		Routes: []handler.Route{
			{Destination: "default", Gateway: "10.88.0.1", Interface: "eth0"},
			{Destination: "10.90.0.0/16", Gateway: "10.89.0.1", Interface: "net1"},
		},
	}
	for _, tc := range []struct {
		name, decision string
		want           handler.Network
		err            error
	}{
		{"allowed as is", `{"allow":true}`, found, nil},
		{"interface removed", `{"allow":true,"patch":[{"op":"remove","path":"/interfaces/1"}]}`,
			handler.Network{Netns: found.Netns, Interfaces: found.Interfaces[:1], Routes: found.Routes}, nil},
		{"address and route removed", `{"allow":true,"patch":[{"op":"remove","path":"/interfaces/0/addresses/1"},{"op":"remove","path":"/routes/0"}]}`,
			handler.Network{Netns: found.Netns, Interfaces: []handler.Interface{
				{Name: "eth0", MAC: "02:42:0a:58:00:05", MTU: 1500, Addresses: []string{"10.88.0.5/16"}}, found.Interfaces[1]},
				Routes: found.Routes[1:]}, nil},
		{"a route added", `{"allow":true,"patch":[{"op":"add","path":"/routes/-","value":{"destination":"0.0.0.0/1","interface":"eth0"}}]}`,
			handler.Network{}, errdefs.ErrPermissionDenied},
		{"an interface renamed", `{"allow":true,"patch":[{"op":"replace","path":"/interfaces/0/name","value":"evil0"}]}`,
			handler.Network{}, errdefs.ErrPermissionDenied},
		{"denied", `{"allow":false,"reason":"no second network"}`, handler.Network{}, errdefs.ErrPermissionDenied},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.Runtime.StateDir = t.TempDir()
			cfg.Hooks = []config.Hook{decisionHook(t, tc.decision, "sandbox.network")}
			h := &netHandler{found: found}
			m := NewManager(fakeHandler("linux"), h)
			_, err := m.Create(context.Background(), virtPodReq(t, &cfg, "pod", "sandbox"), &recorder{})
			if tc.err != nil {
				if err == nil {
					t.Fatalf("create succeeded with %+v, want an error", h.got)
				}
				if !errors.Is(err, tc.err) && !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Errorf("create: %v, want %v", err, tc.err)
				}
				if h.opened != 0 {
					t.Errorf("a sandbox was set up")
				}
				why := "only remove allowed"
				if tc.name == "denied" {
					why = "no second network"
				}
				if !strings.Contains(err.Error(), why) {
					t.Errorf("refusal %v does not say %q", err, why)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(h.got) != 1 || !reflect.DeepEqual(h.got[0], tc.want) {
				t.Errorf("the handler kept %+v\nwant %+v", h.got, tc.want)
			}
		})
	}
}
