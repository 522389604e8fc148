package virt

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"

	"github.com/vishvananda/netlink"
)

// networkRecord, in the sandbox's state directory, says what the handler
// made in the pod's network namespace, so that CleanupSandbox removes it
// after a dead shim. It is not in the VM's directory, the builtin VMM
// process's root: a VMM taken over by its guest has no business reading
// where the pod's namespace is.
const networkRecord = "virt-network.json"

// netRecord is networkRecord's content. It is written before each thing
// it names is made, so that it never misses one.
type netRecord struct {
	Netns string `json:"netns"`
	// Dev and Ino identify the namespace: a path reused for another
	// namespace is left alone.
	Dev uint64 `json:"dev"`
	Ino uint64 `json:"ino"`
	// Taps are the tap devices husk made.
	Taps []string `json:"taps,omitempty"`
	// Ingress are the endpoints husk gave an ingress qdisc.
	Ingress []string `json:"ingress,omitempty"`
}

// podNICs are the taps of a pod's VM, each joined to its endpoint by tc.
type podNICs struct {
	file string // the record's path
	rec  netRecord
	nics []NIC
}

// setupNICs makes a tap for each endpoint of p in the pod's namespace,
// with the endpoint's MTU, up, and joins the two with tc: an ingress
// qdisc on each and a match-all u32 filter whose mirred action redirects
// every frame to the other's egress (Kata's tcfilter model). The VM's
// NICs get the endpoints' MACs. stateDir is the sandbox's, where the
// record is kept. On error nothing is left. No endpoints: nil, nothing
// made.
func setupNICs(p *podNetwork, stateDir string) (_ *podNICs, retErr error) {
	if p == nil || len(p.endpoints) == 0 {
		return nil, nil
	}
	var st unix.Stat_t
	if err := unix.Stat(p.netns, &st); err != nil {
		return nil, fmt.Errorf("network namespace %s: %w", p.netns, err)
	}
	n := &podNICs{file: filepath.Join(stateDir, networkRecord), rec: netRecord{Netns: p.netns, Dev: st.Dev, Ino: st.Ino}}
	h, err := openNetns(p.netns)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	defer func() {
		if retErr != nil {
			if err := n.teardown(); err != nil {
				retErr = fmt.Errorf("%w (and undoing: %v)", retErr, err)
			}
		}
	}()
	for i, e := range p.endpoints {
		if err := n.join(h, i, e); err != nil {
			return nil, fmt.Errorf("network namespace %s: interface %s: %w", p.netns, e.name, err)
		}
	}
	return n, nil
}

// join makes endpoint e's tap and joins them.
func (n *podNICs) join(h *netlink.Handle, i int, e endpoint) error {
	ep, err := h.LinkByIndex(e.index)
	if err != nil {
		return err
	}
	if ep.Attrs().Name != e.name {
		return fmt.Errorf("link %d is now %s: %w", e.index, ep.Attrs().Name, errdefs.ErrFailedPrecondition)
	}
	if ok, err := hasIngress(h, ep); err != nil {
		return err
	} else if ok {
		return fmt.Errorf("it has an ingress qdisc already (not husk's): %w", errdefs.ErrAlreadyExists)
	}
	name := tapName(i, e.name)
	if _, err := h.LinkByName(name); err == nil {
		return fmt.Errorf("link %s exists already: %w", name, errdefs.ErrAlreadyExists)
	}
	n.rec.Taps = append(n.rec.Taps, name)
	if err := n.write(); err != nil {
		return err
	}
	tap, err := openTapIn(n.rec.Netns, name)
	if err != nil {
		return err
	}
	n.nics = append(n.nics, NIC{ID: e.name, Tap: tap, MAC: e.mac, MTU: e.mtu})
	tl, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("the tap %s: %w", name, err)
	}
	if err := h.LinkSetMTU(tl, e.mtu); err != nil {
		return fmt.Errorf("the tap %s: MTU %d: %w", name, e.mtu, err)
	}
	if err := h.LinkSetUp(tl); err != nil {
		return fmt.Errorf("the tap %s: up: %w", name, err)
	}
	if err := addIngress(h, tl.Attrs().Index); err != nil {
		return fmt.Errorf("the tap %s: ingress qdisc: %w", name, err)
	}
	n.rec.Ingress = append(n.rec.Ingress, e.name)
	if err := n.write(); err != nil {
		return err
	}
	if err := addIngress(h, e.index); err != nil {
		return fmt.Errorf("ingress qdisc: %w", err)
	}
	if err := redirect(h, e.index, tl.Attrs().Index); err != nil {
		return fmt.Errorf("redirect to %s: %w", name, err)
	}
	if err := redirect(h, tl.Attrs().Index, e.index); err != nil {
		return fmt.Errorf("redirect from %s: %w", name, err)
	}
	return nil
}

// write replaces the record.
func (n *podNICs) write() error {
	b, err := json.Marshal(&n.rec)
	if err != nil {
		return err
	}
	tmp := n.file + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("recording the pod's network: %w", err)
	}
	if err := os.Rename(tmp, n.file); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("recording the pod's network: %w", err)
	}
	return nil
}

// vmNICs are the VM's NICs over the taps.
func (n *podNICs) vmNICs() []NIC {
	if n == nil {
		return nil
	}
	return n.nics
}

// closeFiles closes the handler's descriptors of the taps (the VM's
// process has its own once it started).
func (n *podNICs) closeFiles() {
	if n == nil {
		return
	}
	for _, c := range n.nics {
		if c.Tap != nil {
			c.Tap.Close()
		}
	}
}

// teardown removes the taps, the endpoints' qdiscs (and with them the
// filters) and the record.
func (n *podNICs) teardown() error {
	if n == nil {
		return nil
	}
	n.closeFiles()
	if err := removeNetwork(&n.rec); err != nil {
		return err
	}
	if err := os.Remove(n.file); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// removeNetwork removes what rec names from its namespace. A namespace
// that is gone, or whose path now names another one, has nothing of ours.
func removeNetwork(rec *netRecord) error {
	var st unix.Stat_t
	if err := unix.Stat(rec.Netns, &st); err != nil || st.Dev != rec.Dev || st.Ino != rec.Ino {
		return nil
	}
	h, err := openNetns(rec.Netns)
	if err != nil {
		return err
	}
	defer h.Close()
	var errs []error
	for _, t := range rec.Taps {
		if err := delTap(h, t); err != nil {
			errs = append(errs, fmt.Errorf("removing tap %s: %w", t, err))
		}
	}
	for _, e := range rec.Ingress {
		if err := delIngress(h, e); err != nil {
			errs = append(errs, fmt.Errorf("removing %s's ingress qdisc: %w", e, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("network namespace %s: %w", rec.Netns, err)
	}
	return nil
}

// cleanupNetwork removes what a dead shim's handler made in the pod's
// network namespace, as the record in the sandbox's state directory says.
// No record: nothing was made.
func cleanupNetwork(stateDir string) error {
	file := filepath.Join(stateDir, networkRecord)
	b, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var rec netRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	if err := removeNetwork(&rec); err != nil {
		return err
	}
	return os.Remove(file)
}
