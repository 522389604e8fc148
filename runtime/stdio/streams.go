package stdio

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/containerd/errdefs"
)

// StreamScheme names a stdio stream that is a connection the caller holds
// rather than a path: "stream:<name>" in Paths. The guest agent uses it for
// the vsock connections the host attached to a process's streams.
const StreamScheme = "stream"

// Streams hands over the connections named in "stream:<name>" stdio.
type Streams interface {
	// Take returns the connection called name, once; it may wait (bounded
	// by ctx) for a connection still being attached.
	Take(ctx context.Context, name string) (io.ReadWriteCloser, error)
}

type streamsKey struct{}

// WithStreams returns a context in which "stream:<name>" stdio is taken
// from s.
func WithStreams(ctx context.Context, s Streams) context.Context {
	return context.WithValue(ctx, streamsKey{}, s)
}

// StreamName returns the stdio name of stream name.
func StreamName(name string) string { return StreamScheme + ":" + name }

// stream returns the connection for a "stream:<name>" stdio name, and
// whether dest is one.
func stream(ctx context.Context, dest string) (io.ReadWriteCloser, bool, error) {
	name, ok := strings.CutPrefix(dest, StreamScheme+":")
	if !ok {
		return nil, false, nil
	}
	s, _ := ctx.Value(streamsKey{}).(Streams)
	if s == nil {
		return nil, true, fmt.Errorf("stdio %q: no streams here: %w", dest, errdefs.ErrInvalidArgument)
	}
	c, err := s.Take(ctx, name)
	if err != nil {
		return nil, true, fmt.Errorf("stdio %q: %w", dest, err)
	}
	return c, true, nil
}
