package handler_test

import (
	"reflect"
	"testing"

	"github.com/huskrt/husk/runtime/handler"
)

// TestNetworkSubset: what the hooks left is taken as a subset of what was
// found: removed interfaces, addresses and routes go; a renamed interface
// is gone rather than renamed; a changed or added element is ignored; of
// two equal routes, as many stay as the answer has.
func TestNetworkSubset(t *testing.T) {
	found := handler.Network{Netns: "/var/run/netns/pod",
		Interfaces: []handler.Interface{
			{Name: "eth0", MAC: "02:00:00:00:00:01", MTU: 1500, Addresses: []string{"10.0.0.2/24", "fd00::2/64"}},
			{Name: "net1", MAC: "02:00:00:00:00:02", MTU: 9000, Addresses: []string{"10.1.0.2/24"}},
		},
		Routes: []handler.Route{
			{Destination: "default", Gateway: "10.0.0.1", Interface: "eth0"},
			{Destination: "10.9.0.0/16", Interface: "net1"},
			{Destination: "10.9.0.0/16", Interface: "net1"},
		},
	}
	for _, tc := range []struct {
		name string
		got  handler.Network
		want handler.Network
	}{
		{"unchanged", found, found},
		{"interface removed", handler.Network{
			Interfaces: []handler.Interface{{Name: "net1", Addresses: []string{"10.1.0.2/24"}}},
			Routes:     found.Routes},
			handler.Network{Netns: found.Netns, Interfaces: found.Interfaces[1:], Routes: found.Routes}},
		{"address removed, MAC and MTU gone too", handler.Network{
			Interfaces: []handler.Interface{{Name: "eth0", Addresses: []string{"fd00::2/64"}}, found.Interfaces[1]},
			Routes:     found.Routes},
			handler.Network{Netns: found.Netns, Interfaces: []handler.Interface{
				{Name: "eth0", MAC: "02:00:00:00:00:01", MTU: 1500, Addresses: []string{"fd00::2/64"}}, found.Interfaces[1]},
				Routes: found.Routes}},
		{"renamed, added, changed", handler.Network{
			Interfaces: []handler.Interface{{Name: "evil0", Addresses: []string{"10.0.0.2/24"}},
				{Name: "net1", Addresses: []string{"10.1.0.2/24", "192.168.0.9/24"}}},
			Routes: []handler.Route{{Destination: "default", Gateway: "10.0.0.66", Interface: "eth0"}, found.Routes[1], found.Routes[2],
				{Destination: "0.0.0.0/1", Interface: "net1"}}},
			handler.Network{Netns: found.Netns, Interfaces: found.Interfaces[1:], Routes: found.Routes[1:]}},
		{"one of two equal routes removed", handler.Network{Interfaces: found.Interfaces, Routes: found.Routes[:2]},
			handler.Network{Netns: found.Netns, Interfaces: found.Interfaces, Routes: found.Routes[:2]}},
		{"all removed", handler.Network{}, handler.Network{Netns: found.Netns}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := found.Subset(&tc.got)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}
