package builtin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"
	"unicode"

	"golang.org/x/sys/unix"
)

// The control channel is a SOCK_SEQPACKET socketpair: fd 3 in the VMM
// process. Each message is one record holding one JSON object; the kernel
// keeps record boundaries, so there is no length field to trust, a record
// too large for the reader's buffer is cut and flagged (MSG_TRUNC), and a
// descriptor passed with SCM_RIGHTS arrives with the record it belongs to.
// The parent sends requests, each with an id; the VMM answers each with
// one reply carrying the same id, and sends nothing else.
//
// The parent is trusted; the VMM process is where a guest that broke out
// of KVM would be, so every reply is bounded (maxReply), decoded strictly,
// validated, and awaited with a deadline.
const (
	// maxRequest bounds a request (the config is the largest).
	maxRequest = 64 << 10
	// maxReply bounds a reply: stats for every slot and exit reason fit
	// many times over.
	maxReply = 16 << 10
	// maxErrorText bounds the VMM's error message the parent passes on.
	maxErrorText = 512
)

// Operations.
const (
	opConfig = "config" // the VM to build; the reply says it runs
	opAttach = "attach" // a disk, its file in SCM_RIGHTS
	opDetach = "detach"
	opStats  = "stats"
	opStop   = "stop" // stop the VM; the VMM replies, then exits
)

// request is one parent → VMM message.
type request struct {
	ID     uint64       `json:"id"`
	Op     string       `json:"op"`
	Config *childConfig `json:"config,omitempty"`
	Disk   *diskRequest `json:"disk,omitempty"`
}

// childConfig is the VM the VMM process builds: VMConfig checked and
// turned into what the child needs (paths absolute, the command line
// joined).
type childConfig struct {
	ID        string `json:"id"`
	Dir       string `json:"dir"`
	Kernel    string `json:"kernel"`
	Initrd    string `json:"initrd,omitempty"`
	Cmdline   string `json:"cmdline"`
	VCPUs     int    `json:"vcpus"`
	MemoryMiB uint64 `json:"memory_mib"`
	DiskSlots int    `json:"disk_slots"`
	// Debug turns the VMM's debug logging on.
	Debug bool `json:"debug,omitempty"`
	// Build is the parent's revision (version.Revision), which the VMM
	// process compares with its own (checkBuild).
	Build string `json:"build,omitempty"`
	// Nets are the VM's NICs; the config request carries their taps'
	// descriptors, in order, which the VMM process puts in Taps.
	Nets []childNet `json:"nets,omitempty"`
	Taps []*os.File `json:"-"`
}

// childNet is a NIC of the VM, over the tap the request carries for it.
type childNet struct {
	ID  string `json:"id"`
	MAC string `json:"mac"` // 01:23:45:67:89:ab
}

// diskRequest is an attach (with the file in SCM_RIGHTS) or a detach.
type diskRequest struct {
	Serial   string `json:"serial"`
	ReadOnly bool   `json:"read_only,omitempty"`
}

// reply is one VMM → parent message.
type reply struct {
	ID    uint64      `json:"id"`
	Error *replyError `json:"error,omitempty"`
	Stats *childStats `json:"stats,omitempty"`
	// Text is a test request's answer (see debug requests).
	Text string `json:"text,omitempty"`
}

// replyError is a failed request: a code the parent maps to an error it
// can classify, and the VMM's message.
type replyError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error codes.
const (
	codeNoFreeSlot = "no-free-slot"
	codeExists     = "exists"
	codeNotFound   = "not-found"
	codeInvalid    = "invalid"
	codeFailed     = "failed"
)

// childStats is what only the VMM knows; the parent adds what it can
// measure itself (RSS, uptime) rather than take the VMM's word for it.
type childStats struct {
	Exits map[string]uint64 `json:"exits"`
	Disks []childDiskStats  `json:"disks"`
}

type childDiskStats struct {
	Serial       string `json:"serial"`
	Reads        uint64 `json:"reads"`
	Writes       uint64 `json:"writes"`
	BytesRead    uint64 `json:"bytes_read"`
	BytesWritten uint64 `json:"bytes_written"`
}

// Bounds on a stats reply beyond its size.
const (
	maxExitReasons  = 32
	maxExitReasonLn = 32
	maxSerial       = 20 // VIRTIO_BLK_ID_BYTES
)

// ErrProtocol is wrapped by every error about what the VMM process sent
// (or did not send in time) on its control channel. The parent then
// trusts the channel no more: it kills the VMM.
var ErrProtocol = errors.New("VMM control protocol violation")

// decodeStrict decodes exactly one JSON object with no unknown fields.
func decodeStrict(b []byte, v any) error {
	d := json.NewDecoder(strings.NewReader(string(b)))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return errors.New("data after the JSON object")
	}
	return nil
}

// readRecord reads one record of at most limit bytes. Descriptors that
// come with it are returned as files; a record or control message that
// did not fit is an error (after closing whatever descriptors did come).
func readRecord(c *net.UnixConn, limit int) ([]byte, []int, error) {
	buf := make([]byte, limit+1)
	oob := make([]byte, unix.CmsgSpace(4*maxFDs))
	n, oobn, flags, _, err := c.ReadMsgUnix(buf, oob)
	// Descriptors first: they are ours to close whatever else went wrong
	// (an empty record with descriptors reads as io.EOF).
	fds, ferr := parseFDs(oob[:max(oobn, 0)])
	switch {
	case err != nil:
		ferr = err
	case ferr != nil:
	case flags&unix.MSG_CTRUNC != 0:
		ferr = fmt.Errorf("%w: control data cut short", ErrProtocol)
	case flags&unix.MSG_TRUNC != 0 || n > limit:
		ferr = fmt.Errorf("%w: a record over %d bytes", ErrProtocol, limit)
	case n == 0:
		// A zero-length record reads as the peer's close (io.EOF) on
		// SOCK_SEQPACKET; should one get here, it is treated the same.
		ferr = io.EOF
	}
	if ferr != nil {
		closeFDs(fds)
		return nil, nil, ferr
	}
	return buf[:n], fds, nil
}

// maxFDs is how many descriptors one record may carry: an attach has one,
// a config one per NIC.
const maxFDs = MaxNICs

func parseFDs(oob []byte) ([]int, error) {
	if len(oob) == 0 {
		return nil, nil
	}
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("%w: control data: %v", ErrProtocol, err)
	}
	var fds []int
	var bad error
	for _, m := range msgs {
		got, err := unix.ParseUnixRights(&m)
		if err != nil {
			bad = fmt.Errorf("%w: control message %d/%d", ErrProtocol, m.Header.Level, m.Header.Type)
			continue
		}
		fds = append(fds, got...)
	}
	if bad == nil && len(fds) > maxFDs {
		bad = fmt.Errorf("%w: %d descriptors in one record", ErrProtocol, len(fds))
	}
	if bad != nil {
		closeFDs(fds)
		return nil, bad
	}
	return fds, nil
}

func closeFDs(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// writeRecord sends v as one record, with fds if any, by deadline.
func writeRecord(c *net.UnixConn, v any, fds []int, deadline time.Time) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	c.SetWriteDeadline(deadline)
	_, _, err = c.WriteMsgUnix(b, oob, nil)
	return err
}

// cleanText makes the VMM's text safe to show: at most maxErrorText bytes
// of printable characters.
func cleanText(s string) string {
	if len(s) > maxErrorText {
		s = s[:maxErrorText] + "…"
	}
	return strings.Map(func(r rune) rune {
		if r == unicode.ReplacementChar || !unicode.IsPrint(r) {
			return '?'
		}
		return r
	}, s)
}

// checkStats validates a stats reply against the VM's shape.
func checkStats(s *childStats, slots int) error {
	if s == nil {
		return fmt.Errorf("%w: a stats reply without stats", ErrProtocol)
	}
	if len(s.Exits) > maxExitReasons {
		return fmt.Errorf("%w: %d exit reasons", ErrProtocol, len(s.Exits))
	}
	for k := range s.Exits {
		if k == "" || len(k) > maxExitReasonLn || strings.IndexFunc(k, notName) >= 0 {
			return fmt.Errorf("%w: exit reason %q", ErrProtocol, cleanText(k))
		}
	}
	if len(s.Disks) > slots {
		return fmt.Errorf("%w: %d disks in a VM of %d slots", ErrProtocol, len(s.Disks), slots)
	}
	for _, d := range s.Disks {
		if d.Serial == "" || len(d.Serial) > maxSerial || strings.IndexByte(d.Serial, 0) >= 0 {
			return fmt.Errorf("%w: disk serial %q", ErrProtocol, cleanText(d.Serial))
		}
	}
	return nil
}

func notName(r rune) bool {
	return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-')
}
