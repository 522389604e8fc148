package wasmhost

import (
	"context"
	"encoding/binary"
	"log/slog"
	"strings"

	"github.com/tetratelabs/wazero/api"
)

// Bounds on what a module can make the host keep or print.
const (
	maxLogLines    = 16      // husk.log lines per call; more are dropped
	maxLogBytes    = 1 << 10 // bytes of one husk.log line; more are cut
	maxOutputHead  = 1 << 10 // bytes of stdout/stderr kept for errors
	maxInitMessage = 1 << 10 // bytes of a husk_init error message
)

// hostLog implements husk.log(level, ptr, len i32): one line of text from
// the module. It never fails the call: a bad pointer or too many lines only
// lose the line.
func (m *Module) hostLog(ctx context.Context, mod api.Module, stack []uint64) {
	if m.host.cfg.Log == nil {
		return
	}
	level, ptr, n := int32(stack[0]), uint32(stack[1]), uint32(stack[2])
	if in, ok := ctx.Value(callKey{}).(*instance); ok {
		in.logs++
		switch {
		case in.logs == maxLogLines+1:
			m.host.cfg.Log(ctx, m.cfg.Name, slog.LevelWarn, "more log lines in this call were dropped")
			return
		case in.logs > maxLogLines:
			return
		}
	}
	cut := n > maxLogBytes
	if cut {
		n = maxLogBytes
	}
	b, ok := mod.Memory().Read(ptr, n)
	if !ok {
		m.host.cfg.Log(ctx, m.cfg.Name, slog.LevelWarn, "log message outside memory")
		return
	}
	msg := EscapeText(string(b)) // one line, no escape sequences
	if cut {
		msg += "…"
	}
	m.host.cfg.Log(ctx, m.cfg.Name, logLevel(level), msg)
}

// Results of husk.json_index.
const (
	indexOK       = 0
	indexNoInput  = -1 // not called from husk_decide or husk_init
	indexTooSmall = -2 // the buffer is shorter than 4 bytes per input byte
	indexOutside  = -3 // the buffer is not inside memory
)

// callInstance returns the instance whose call ctx belongs to.
func callInstance(ctx context.Context) (*instance, bool) {
	in, ok := ctx.Value(callKey{}).(*instance)
	return in, ok
}

// hostJSONIndex implements husk.json_index(ptr, len i32) -> i32: it writes
// the structural index (see jsonIndex) of the current call's JSON input
// into the len bytes at ptr, as little-endian uint32s.
func hostJSONIndex(ctx context.Context, mod api.Module, stack []uint64) {
	ptr, n := uint32(stack[0]), uint32(stack[1])
	in, ok := callInstance(ctx)
	if !ok || in.q.input == nil {
		stack[0] = api.EncodeI32(indexNoInput)
		return
	}
	need := 4 * uint64(len(in.q.input))
	if uint64(n) < need {
		stack[0] = api.EncodeI32(indexTooSmall)
		return
	}
	dst, ok := mod.Memory().Read(ptr, uint32(need))
	if !ok {
		stack[0] = api.EncodeI32(indexOutside)
		return
	}
	for i, v := range in.q.indexed() { // dst is a view of the module's memory
		binary.LittleEndian.PutUint32(dst[4*i:], v)
	}
	stack[0] = api.EncodeI32(indexOK)
}

// hostJSONGet implements husk.json_get(base, ptr, len i32) -> i64: the
// value at the JSON Pointer [ptr, ptr+len) relative to the value starting
// at offset base of the call's input, as offset<<32 | length, or -1 (all
// ones) when there is none.
func hostJSONGet(ctx context.Context, mod api.Module, stack []uint64) {
	base, ptr, n := uint32(stack[0]), uint32(stack[1]), uint32(stack[2])
	stack[0] = ^uint64(0)
	in, ok := callInstance(ctx)
	// A pointer names each member it passes, with each character at most
	// two long (~0, ~1), and each array index in fewer digits than its
	// array has bytes: one over three times the input cannot match, and
	// would be copied for nothing (a module can pass its whole memory: 1
	// GiB took 17 s).
	if !ok || in.q.input == nil || uint64(n) > 3*uint64(len(in.q.input)) {
		return
	}
	p, ok := mod.Memory().Read(ptr, n)
	if !ok {
		return
	}
	if start, end, ok := in.q.get(int(base), string(p)); ok {
		stack[0] = uint64(start)<<32 | uint64(end-start)
	}
}

// hostSetNew implements husk.set_new(ptr, len i32) -> i32: it registers the
// JSON array of strings at [ptr, ptr+len) as a set of the instance and
// returns its id, or -1 (not an array of strings, too many sets or
// members, or more than maxSetBytes held by the instance's sets).
func hostSetNew(ctx context.Context, mod api.Module, stack []uint64) {
	ptr, n := uint32(stack[0]), uint32(stack[1])
	stack[0] = api.EncodeI32(-1)
	in, ok := callInstance(ctx)
	// The text's length bounds the set's cost from below: refuse before
	// decoding what cannot fit.
	if !ok || len(in.sets) >= maxSets || in.setBytes+int(n) > maxSetBytes {
		return
	}
	b, ok := mod.Memory().Read(ptr, n)
	if !ok {
		return
	}
	set, ok := newSet(b)
	if !ok || in.setBytes+set.cost > maxSetBytes {
		return
	}
	in.setBytes += set.cost
	in.sets = append(in.sets, set)
	stack[0] = api.EncodeI32(int32(len(in.sets) - 1))
}

// hostJSONMatch implements husk.json_match(off, set, mode i32) -> i32 on
// the value starting at offset off of the call's input: for a string, 0
// if it matches the set and -1 if not; for an array, the index of its
// first string element that matches, or -1; -2 when no value starts at off
// or set or mode is unknown. Mode 0 matches members of the set, mode 1
// strings that start with one.
func hostJSONMatch(ctx context.Context, _ api.Module, stack []uint64) {
	off, id, mode := int(uint32(stack[0])), api.DecodeI32(stack[1]), api.DecodeI32(stack[2])
	stack[0] = api.EncodeI32(matchNoValue)
	in, ok := callInstance(ctx)
	if !ok || in.q.input == nil || id < 0 || int(id) >= len(in.sets) || (mode != matchEqual && mode != matchPrefix) {
		return
	}
	stack[0] = api.EncodeI32(in.q.match(off, in.sets[id], mode))
}

// logLevel maps an ABI log level to slog's; unknown levels are info.
func logLevel(l int32) slog.Level {
	switch l {
	case LogDebug:
		return slog.LevelDebug
	case LogWarn:
		return slog.LevelWarn
	case LogError:
		return slog.LevelError
	}
	return slog.LevelInfo
}

// head keeps the first max bytes written to it in a call: a module's stdout
// and stderr, for error messages. The start is what explains a failure (a
// Go module prints "panic: ..." or "fatal error: out of memory" first, then
// goroutine traces).
type head struct {
	buf []byte
	max int
}

// Write implements io.Writer; it never fails.
func (h *head) Write(p []byte) (int, error) {
	if room := h.max - len(h.buf); room > 0 {
		h.buf = append(h.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (h *head) reset() { h.buf = h.buf[:0] }

// String returns what was kept, trimmed and valid UTF-8.
func (h *head) String() string {
	return strings.ToValidUTF8(strings.TrimSpace(string(h.buf)), "\uFFFD")
}
