package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/huskrt/husk/hooks"
	"github.com/huskrt/husk/internal/vocab"
	"github.com/huskrt/husk/runtime/config"
)

// checkConfig goes past what config.Load checks (syntax, keys, values) to
// what the shim would find only when a container comes: every hook's
// module is loaded as the shim loads it (the file is there, is a hook
// module, matches its sha256 pin, compiles) and handed its [hook.config]
// table, which the module checks itself (husk_init: the built-in policies
// refuse a key they do not know); and the default handler is one this host
// can run (virt: its hypervisor backend and guest image, as huskctl check
// says). It prints what it checked, and returns every problem found.
func checkConfig(ctx context.Context, w io.Writer, c *config.Config) error {
	files := "none (built-in defaults)"
	if len(c.Sources) > 0 {
		files = strings.Join(c.Sources, ", ")
	}
	fmt.Fprintf(w, "files: %s\n", files)
	var problems []error
	if err := checkHookModules(ctx, w, c.Hooks); err != nil {
		problems = append(problems, err)
	}
	if err := checkDefaultHandler(ctx, w, c); err != nil {
		problems = append(problems, err)
	}
	if len(problems) > 0 {
		return errors.Join(problems...)
	}
	_, err := fmt.Fprintln(w, "ok")
	return err
}

// checkHookModules loads every hook as the shim would, with its config.
func checkHookModules(ctx context.Context, w io.Writer, hs []config.Hook) error {
	if len(hs) == 0 {
		fmt.Fprintln(w, "hooks: none")
		return nil
	}
	// One hook at a time, so that each gets its own verdict; in memory
	// (no cache directory): a check writes nothing.
	var errs []error
	for _, h := range hs {
		e, err := hooks.New(ctx, []config.Hook{h}, hooks.Options{})
		if err != nil {
			fmt.Fprintf(w, "hook %s: FAIL\n", h.Name)
			errs = append(errs, err)
			continue
		}
		_ = e.Close(ctx)
		pin := "no sha256 pin"
		if h.SHA256 != "" {
			pin = "sha256 pin matches"
		}
		fmt.Fprintf(w, "hook %s: %s loads, %s, its config accepted\n", h.Name, h.Module, pin)
	}
	return errors.Join(errs...)
}

// checkDefaultHandler says whether this host, and this build, can run the
// default handler. Every build has the three handlers; what can be missing
// is a hypervisor backend (make build VARIANT=novmm leaves husk's VMM out,
// and huskctl is built as the shim is) or what a handler needs of the
// host: for virt, the configured hypervisor and the guest image.
func checkDefaultHandler(ctx context.Context, w io.Writer, c *config.Config) error {
	h := c.Runtime.DefaultHandler
	if h != vocab.Virt {
		fmt.Fprintf(w, "default handler %s\n", h)
		return nil
	}
	var missing []string
	for _, f := range checkVirt(ctx, c) {
		if f.err != nil && !f.optional {
			missing = append(missing, fmt.Sprintf("%s: %v", f.what, f.err))
		}
	}
	if len(missing) == 0 {
		fmt.Fprintf(w, "default handler %s: can run here\n", h)
		return nil
	}
	fmt.Fprintf(w, "default handler %s: FAIL\n", h)
	return fmt.Errorf("runtime.default_handler = %q cannot run on this host (huskctl check says more): %s", h, strings.Join(missing, "; "))
}
