package runtime

import (
	"context"

	"github.com/huskrt/husk/runtime/handler"
)

// createOnly is a handler.Sandbox that holds nothing and creates
// containers with its function: the fake handlers' pod part.
type createOnly func(context.Context, *handler.CreateRequest) (handler.Container, error)

func (f createOnly) Create(ctx context.Context, req *handler.CreateRequest) (handler.Container, error) {
	return f(ctx, req)
}
func (createOnly) Close(context.Context) error { return nil }
