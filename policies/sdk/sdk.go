// Package sdk writes husk hook modules in Go: a policy is one function from
// an event to a decision.
//
//	package main
//
//	import "github.com/huskrt/husk/policies/sdk"
//
//	func init() { sdk.Handle(decide) }
//
//	func decide(ev sdk.Event) sdk.Decision {
//		if ev.Point() != sdk.ContainerCreate {
//			return sdk.Allow()
//		}
//		if t, _ := ev.At("/spec/process/terminal").Bool(); t {
//			return sdk.Deny("interactive containers are not allowed here")
//		}
//		return sdk.Allow()
//	}
//
//	func main() {} // required, never called
//
// Build it as a WASI reactor (huskctl policy build wraps this):
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o policy.wasm .
//
// The SDK implements husk's hook ABI v1 (docs/hooks.md) with
// //go:wasmexport: the module exports husk_hook_abi_v1, husk_alloc,
// husk_decide and husk_init. Registration happens in init because a
// c-shared module runs package initialisers but never main.
//
// # Speed
//
// A hook call is on the path of every container start, and a module's own
// code is slow: husk bounds every call by checking at each loop iteration,
// and Go's WebAssembly code goes through such a check at nearly every
// taken branch (about 30 ns each). So the event is never decoded in the
// module: Value.At, In, Find and PrefixIn ask the host, which reads the
// JSON natively (husk's JSON helpers, docs/hooks.md), and the decision is
// written without reflection. For a fast policy: reach values with At and
// constant JSON Pointers, compare with a Set made once, switch on
// ev.Point(), and avoid encoding/json, fmt, regexp and loops over the
// event in the hot path (Members and Elems iterate in the module).
//
// # Facts husk does not know
//
// A member an event always carries but whose value husk may not know is
// null, never "" (docs/hooks.md, §2): /container/image is null for a
// container made from a root filesystem directory (ctr run --rootfs), and
// whenever neither containerd's record of the container nor the CRI names
// an image. Value.IsNull tells; Str then reports that the value is not a
// string. Decide what unknown means for the policy before comparing: a
// name that matches no denied prefix is not an allowed one.
//
//	image := ev.At("/container/image")
//	if image.IsNull() {
//		return sdk.Deny("image unknown")
//	}
//
// The package builds for any GOOS, so that policies are unit-tested
// natively: call the policy's function with NewEvent, or go through the
// registered functions with Configure and Decide.
package sdk

import (
	"strings"

	"github.com/huskrt/husk/internal/vocab"
)

// Point is a hook point. The SDK's points are small integers, so that a
// policy can switch on them for free.
type Point uint8

// The points (docs/hooks.md). PointUnknown is one this SDK does not know
// (Event.PointName has its name).
const (
	PointUnknown Point = iota
	SandboxCreate
	SandboxVM
	SandboxNetwork
	ContainerCreate
	ContainerRootfs
	ContainerMount
	ContainerCgroups
	ContainerStart
	ProcessExec
	ContainerUpdate
	ContainerDelete
	SandboxDelete
)

// pointNames are the points' names by Point: PointUnknown's empty name,
// then vocab's list, whose order the constants above follow (a test checks
// parsePoint against it).
var pointNames = append([]string{""}, vocab.Points()...)

// String returns p's name, such as "container.create".
func (p Point) String() string {
	if int(p) < len(pointNames) {
		return pointNames[p]
	}
	return ""
}

// parsePoint returns the Point named name, comparing without loops: the
// length and one byte pick the candidate, equal confirms it.
func parsePoint(name string) Point {
	var p Point
	switch len(name) {
	case 10:
		p = SandboxVM
	case 12:
		p = ProcessExec
	case 14:
		p = SandboxCreate
		if name[8] == 'd' {
			p = SandboxDelete
		}
	case 15:
		switch name[10] {
		case 't':
			p = SandboxNetwork
		case 'm':
			p = ContainerMount
		case 's':
			p = ContainerStart
		}
	case 16:
		switch name[10] {
		case 'c':
			p = ContainerCreate
		case 'r':
			p = ContainerRootfs
		case 'u':
			p = ContainerUpdate
		case 'd':
			p = ContainerDelete
		}
	case 17:
		p = ContainerCgroups
	}
	if p != PointUnknown && equal([]byte(pointNames[p]), name) {
		return p
	}
	return PointUnknown
}

// Event is the event of one hook call: its point and its JSON, whose
// schema for each point is in docs/hooks.md (every event has "version":
// 1). Read it with the Value methods, e.g.
// ev.At("/spec/process/args/0").Str().
type Event struct {
	Value
	point Point
	name  string // the point's name when the SDK does not know it
}

// NewEvent returns the event of point with JSON text raw, for tests.
func NewEvent(point string, raw []byte) Event {
	return Event{Value: ParseValue(raw), point: parsePoint(point), name: point}
}

// Point returns the event's point.
func (e Event) Point() Point { return e.point }

// PointName returns the name of the event's point, such as
// "container.create", also for a point this SDK does not know.
func (e Event) PointName() string {
	if e.point != PointUnknown {
		return e.point.String()
	}
	return e.name
}

// Version returns the event's schema version ("version"), 0 if absent.
func (e Event) Version() int64 {
	v, _ := e.At("/version").Int()
	return v
}

var (
	handler   func(Event) Decision
	configure func(config Value) error
	// event is the document of the current call's event, reused call after
	// call; its generation tells the Values of past calls apart.
	event document
)

// Handle registers the policy: f is called for every hook call. Call it
// from an init function.
func Handle(f func(Event) Decision) { handler = f }

// OnInit registers f to receive the hook's config table (an object; {} if
// the operator gave none) once per module instance, before any call. An
// error stops the module from loading, with the error's text. The config
// Value stays valid for the life of the module. Call it from an init
// function.
func OnInit(f func(config Value) error) { configure = f }

// Configure hands config, the JSON of a config table, to the function
// registered with OnInit. husk_init calls it; tests may too. config must
// stay unchanged for the module's life (Values of it stay valid).
func Configure(config []byte) error {
	if configure == nil {
		return nil
	}
	d := &document{b: config, input: inModule}
	defer func() { d.input = false }() // the host's input is the config only now
	return configure(d.root())
}

// Decide calls the function registered with Handle. husk_decide calls it;
// tests may too. Without a handler it denies. Values of the event are
// missing once it returns.
func Decide(point string, raw []byte) Decision {
	if handler == nil {
		return Deny("policy error: no handler registered (call sdk.Handle in an init function)")
	}
	event.start(raw, inModule)
	defer event.end()
	ev := Event{Value: event.root(), point: parsePoint(point)}
	if ev.point == PointUnknown {
		ev.name = strings.Clone(point) // the caller's bytes are reused
	}
	return handler(ev)
}
