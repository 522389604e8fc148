package virt

import (
	"fmt"
	"runtime"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	virtionet "github.com/huskrt/husk/vmm/virtio/net"
)

// ProbePodNetwork says whether this host can join a VM to a pod's network
// namespace as the handler does: in a network namespace of its own it
// makes a tap, gives it an ingress qdisc and a match-all u32 filter with a
// mirred redirect (tun, sch_ingress, cls_u32 and act_mirred). Nothing
// outlives the call: the namespace ends with its thread.
func ProbePodNetwork() error {
	ch := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends in the probe's namespace
		ch <- probeInOwnNetns()
	}()
	return <-ch
}

func probeInOwnNetns() error {
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("a network namespace: %w", err)
	}
	tap, err := virtionet.OpenTap("huskprobe0")
	if err != nil {
		return err
	}
	defer tap.Close()
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	defer h.Close()
	l, err := h.LinkByName("huskprobe0")
	if err != nil {
		return fmt.Errorf("the tap: %w", err)
	}
	if err := addIngress(h, l.Attrs().Index); err != nil {
		return fmt.Errorf("an ingress qdisc (sch_ingress): %w", err)
	}
	if err := redirect(h, l.Attrs().Index, l.Attrs().Index); err != nil {
		return fmt.Errorf("a u32 filter with a mirred redirect (cls_u32, act_mirred): %w", err)
	}
	return nil
}
