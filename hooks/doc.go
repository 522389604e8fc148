// Package hooks asks hook modules, at each point of resource setup,
// whether a step may go on and with what changes.
//
// A point (container.create, process.exec, ...) has an event, a versioned
// JSON schema given by the *Event types, and rules saying what a patch may
// change there. The Engine runs the chain of a point: the hooks configured
// for it ([[hook]] in config.toml), each a Wasm module loaded by package
// wasmhost that answers with a Decision: allow, deny with a reason, or
// allow with a JSON Patch (RFC 6902) within the point's rules. Changing
// hooks (kind = "change") are asked first, then checking hooks, which
// see the final event and may not patch; Engine.Recheck asks a point's
// checking hooks again about an event a later point changed.
//
// The runtime calls the engine at each point and acts on the outcome:
//
//	out, err := engine.Run(ctx, hooks.ContainerCreate, &ev)
//	if err != nil {
//		return err
//	}
//	if err := out.Err(); err != nil {
//		return err // errdefs.ErrPermissionDenied, with the hook's reason
//	}
//	if err := out.Decode(&ev); err != nil { // the patched event, if patched
//		return err
//	}
//
// docs/hooks.md specifies the points, the events, the ABI and the
// built-in policies for the people who write and deploy modules.
package hooks
