package vsock

import (
	"net"
	"sync"
)

// connKey names a connection: the host-side port and the guest's.
type connKey struct {
	local, peer uint32
}

// connState is where a connection is in its life.
type connState int

const (
	// stateDialing: the guest asked to connect; the device is connecting
	// to the host's Unix socket.
	stateDialing connState = iota
	// stateConnecting: a host process asked to connect; the device waits
	// for the guest's RESPONSE.
	stateConnecting
	stateEstablished
)

// Control packets a connection owes the guest, sent before its data.
const (
	ctlRequest = 1 << iota
	ctlResponse
	ctlCreditUpdate
	ctlShutdown
	ctlRST // sent last: it ends the connection
)

// conn is one stream between a guest socket and a host Unix connection.
// Everything in it is guarded by the device's mu, except sock's I/O.
type conn struct {
	key   connKey
	state connState
	sock  net.Conn // nil while dialing
	cond  *sync.Cond

	closed   bool // removed from the device: goroutines exit
	draining bool // the guest is gone (RST sent): write what is left, then close
	queued   bool // on the device's ready list
	ctl      int  // control packets owed to the guest
	shutSend bool // the guest will send no more: close the host's write side once drained
	shutRecv bool // the guest will receive no more
	hostEOF  bool // the host side closed its write side

	// Flow control (virtio 1.2, 5.10.6.3): what the guest advertised, what
	// the device sent it, and what the device forwarded to the host.
	peerBufAlloc, peerFwdCnt uint32
	txCnt                    uint32 // payload bytes sent to the guest
	fwdCnt                   uint32 // guest bytes written to the host socket
	lastFwdCnt               uint32 // fwdCnt as last told to the guest

	preamble []byte // written to the host before any data ("OK <port>\n")
	toHost   []byte // guest data not yet written to the host socket
	writing  int    // bytes the writer has taken from toHost but not finished
	fromHost []byte // host data read, waiting for receive buffers
}

// credit is how many payload bytes the guest can take now.
func (c *conn) credit() uint32 {
	inFlight := c.txCnt - c.peerFwdCnt
	if inFlight > c.peerBufAlloc {
		return 0
	}
	return c.peerBufAlloc - inFlight
}

// buffered is how many guest bytes the device holds for the host.
func (c *conn) buffered() int { return len(c.toHost) + c.writing }
