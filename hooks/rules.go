package hooks

import (
	"fmt"
	"strings"

	"github.com/huskrt/husk/internal/textesc"
)

// opMask is a set of JSON Patch operation kinds.
type opMask uint8

const (
	opAdd opMask = 1 << iota
	opRemove
	opReplace
	opsAll = opAdd | opRemove | opReplace
)

// rule lets a patch change the event at or below path with the kinds in
// ops. A move is a remove at its from and an add at its path; a copy is an
// add at its path that reads from. test changes nothing and may read
// anywhere.
type rule struct {
	path pointer
	ops  opMask
}

func writable(path string, ops opMask) rule { return rule{mustPointer(path), ops} }

// checkOps checks that every operation of a patch stays within rules.
func checkOps(rules []rule, ops []Op) error {
	for i, op := range ops {
		if err := checkOp(rules, op); err != nil {
			return fmt.Errorf("patch operation %d (%s %s): %w", i, textesc.Escape(op.Op), textesc.Escape(op.Path), err)
		}
	}
	return nil
}

func checkOp(rules []rule, op Op) error {
	path, err := parsePointer(op.Path)
	if err != nil {
		return err
	}
	switch op.Op {
	case "test":
		return nil
	case "add":
		return allowed(rules, path, opAdd, false)
	case "replace":
		return allowed(rules, path, opReplace, false)
	case "remove":
		return allowed(rules, path, opRemove, true)
	case "move", "copy":
		from, err := parsePointer(op.From)
		if err != nil {
			return fmt.Errorf("from: %w", err)
		}
		if op.Op == "move" {
			if err := allowed(rules, from, opRemove, true); err != nil {
				return fmt.Errorf("from %s: %w", textesc.Escape(op.From), err)
			}
		} else if !readable(rules, from) {
			return fmt.Errorf("from %s: %w", textesc.Escape(op.From), errOutside(rules))
		}
		return allowed(rules, path, opAdd, false)
	}
	return fmt.Errorf("unknown operation %q", op.Op)
}

// allowed reports whether an operation of kind may act at path. A removal
// must be strictly below a rule's path: the listed paths themselves stay.
func allowed(rules []rule, path pointer, kind opMask, removes bool) error {
	for _, r := range rules {
		if !path.hasPrefix(r.path) {
			continue
		}
		if removes && len(path) == len(r.path) {
			return fmt.Errorf("%w: %s itself cannot be removed", ErrPatchNotAllowed, r.path)
		}
		if r.ops&kind == 0 {
			return fmt.Errorf("%w: only %s allowed under %s", ErrPatchNotAllowed, r.ops, r.path)
		}
		return nil
	}
	return errOutside(rules)
}

func readable(rules []rule, path pointer) bool {
	for _, r := range rules {
		if path.hasPrefix(r.path) {
			return true
		}
	}
	return false
}

func errOutside(rules []rule) error {
	if len(rules) == 0 {
		return fmt.Errorf("%w: nothing may change at this point", ErrPatchNotAllowed)
	}
	paths := make([]string, len(rules))
	for i, r := range rules {
		paths[i] = r.path.String()
	}
	return fmt.Errorf("%w: a patch may only change %s", ErrPatchNotAllowed, strings.Join(paths, ", "))
}

// String lists the kinds in m, as operation names.
func (m opMask) String() string {
	var names []string
	for _, k := range []struct {
		bit  opMask
		name string
	}{{opAdd, "add"}, {opRemove, "remove"}, {opReplace, "replace"}} {
		if m&k.bit != 0 {
			names = append(names, k.name)
		}
	}
	return strings.Join(names, ", ")
}
