// Command netpod plays a CNI plugin and a pod's client in the nested
// harness's outer guest, whose busybox ip has no network namespaces:
//
//	netpod up NAME        a network namespace /run/netns/NAME with eth0,
//	                      the pod end of a veth pair (10.213.77.2/30, a
//	                      default route through the host end, hkv0,
//	                      10.213.77.1/30)
//	netpod get ADDR SECS  dials ADDR until it answers (at most SECS
//	                      seconds) and prints the answer
//	netpod left NAME      prints the taps and ingress qdiscs in NAME, one a
//	                      line (NAME may be a namespace's path, as a CRI's)
//	netpod down NAME      removes the veth pair and the namespace
package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

const hostEnd = "hkv0"

var (
	hostIP = net.IPv4(10, 213, 77, 1).To4()
	podIP  = net.IPv4(10, 213, 77, 2).To4()
	mask   = net.CIDRMask(30, 32)
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: netpod up|get|left|down ARG...")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "up":
		err = up(os.Args[2])
	case "get":
		secs := 60
		if len(os.Args) > 3 {
			secs, _ = strconv.Atoi(os.Args[3])
		}
		err = get(os.Args[2], time.Duration(secs)*time.Second)
	case "left":
		err = left(os.Args[2])
	case "down":
		err = down(os.Args[2])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "netpod:", err)
		os.Exit(1)
	}
}

func handle(name string) (*netlink.Handle, netns.NsHandle, error) {
	p := name
	if !filepath.IsAbs(p) {
		p = filepath.Join("/run/netns", name)
	}
	ns, err := netns.GetFromPath(p)
	if err != nil {
		return nil, 0, err
	}
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		ns.Close()
		return nil, 0, err
	}
	return h, ns, nil
}

func up(name string) error {
	ch := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends in the new namespace
		ns, err := netns.NewNamed(name)
		if err == nil {
			ns.Close()
		}
		ch <- err
	}()
	if err := <-ch; err != nil {
		return fmt.Errorf("new namespace: %w", err)
	}
	h, ns, err := handle(name)
	if err != nil {
		return err
	}
	defer ns.Close()
	defer h.Close()
	if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: hostEnd}, PeerName: "hkp0", PeerNamespace: netlink.NsFd(int(ns))}); err != nil {
		return fmt.Errorf("veth: %w", err)
	}
	hl, err := netlink.LinkByName(hostEnd)
	if err != nil {
		return err
	}
	if err := netlink.AddrAdd(hl, &netlink.Addr{IPNet: &net.IPNet{IP: hostIP, Mask: mask}}); err != nil {
		return err
	}
	if err := netlink.LinkSetUp(hl); err != nil {
		return err
	}
	pl, err := h.LinkByName("hkp0")
	if err != nil {
		return err
	}
	if err := h.LinkSetName(pl, "eth0"); err != nil {
		return err
	}
	if err := h.AddrAdd(pl, &netlink.Addr{IPNet: &net.IPNet{IP: podIP, Mask: mask}}); err != nil {
		return err
	}
	if err := h.LinkSetUp(pl); err != nil {
		return err
	}
	return h.RouteAdd(&netlink.Route{LinkIndex: pl.Attrs().Index, Gw: hostIP})
}

func get(addr string, within time.Duration) error {
	deadline := time.Now().Add(within)
	var last error
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			last = err
			time.Sleep(200 * time.Millisecond)
			continue
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		b, err := io.ReadAll(c)
		c.Close()
		if err != nil || len(b) == 0 {
			last = fmt.Errorf("read %q: %v", b, err)
			time.Sleep(200 * time.Millisecond)
			continue
		}
		_, err = os.Stdout.Write(b)
		return err
	}
	return fmt.Errorf("%s never answered within %v (last: %v)", addr, within, last)
}

func left(name string) error {
	h, ns, err := handle(name)
	if err != nil {
		return err
	}
	defer ns.Close()
	defer h.Close()
	links, err := h.LinkList()
	if err != nil {
		return err
	}
	for _, l := range links {
		if l.Type() == "tuntap" {
			fmt.Println("tap", l.Attrs().Name)
		}
		qs, err := h.QdiscList(l)
		if err != nil {
			return err
		}
		for _, q := range qs {
			if q.Type() == "ingress" {
				fmt.Println("ingress qdisc on", l.Attrs().Name)
			}
		}
	}
	return nil
}

func down(name string) error {
	if l, err := netlink.LinkByName(hostEnd); err == nil {
		if err := netlink.LinkDel(l); err != nil {
			return err
		}
	}
	return netns.DeleteNamed(name)
}
