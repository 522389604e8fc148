package wasmhost

import (
	"fmt"
	"slices"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// The hook ABI, version 1 (docs/hooks.md is the normative text).
//
// A module exports its memory and:
//
//	husk_hook_abi_v1()                          version marker, never called
//	husk_alloc(size i32) -> ptr i32             size writable bytes; 0 on failure
//	husk_decide(point_ptr, point_len, event_ptr, event_len i32) -> i64
//	                                            decision JSON as ptr<<32 | len
//	husk_init(config_ptr, config_len i32) -> i64   optional; 0 or an error
//	                                            message as ptr<<32 | len
//
// and may import husk.log and the JSON helpers husk.json_index,
// husk.json_get, husk.json_match and husk.set_new. Reactor modules (Go c-shared, wasi-libc reactors) also
// export _initialize, called once per instance before anything else.
const (
	ExportMarker = "husk_hook_abi_v1"
	ExportAlloc  = "husk_alloc"
	ExportDecide = "husk_decide"
	ExportInit   = "husk_init"
	ExportMemory = "memory"

	// ImportModule is the module name of husk's host functions.
	ImportModule = "husk"
	// ImportLog is husk's log function: log(level, ptr, len i32).
	ImportLog = "log"
	// The JSON helpers: the host reads the call's JSON input (the event,
	// or the config in husk_init) natively for the module. See
	// docs/hooks.md.
	ImportJSONIndex = "json_index" // (ptr, len i32) -> i32
	ImportJSONGet   = "json_get"   // (base, ptr, len i32) -> i64
	ImportJSONMatch = "json_match" // (off, set, mode i32) -> i32
	ImportSetNew    = "set_new"    // (ptr, len i32) -> i32

	// markerPrefix starts every ABI version marker, so that a module built
	// for another version gets a precise error.
	markerPrefix = "husk_hook_abi_v"
	// initialize is the WASI reactor initialiser.
	initialize = "_initialize"
	// wasiModule is the WASI preview 1 import module.
	wasiModule = "wasi_snapshot_preview1"
)

// Log levels a module passes to husk.log.
const (
	LogDebug = 0
	LogInfo  = 1
	LogWarn  = 2
	LogError = 3
)

var (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
)

// signature is a function type, as wazero describes it.
type signature struct {
	params, results []api.ValueType
}

func (s signature) String() string {
	return "(" + typeNames(s.params) + ") -> (" + typeNames(s.results) + ")"
}

func typeNames(ts []api.ValueType) string {
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = api.ValueTypeName(t)
	}
	return strings.Join(names, ", ")
}

// abiExports are the functions of ABI version 1 and whether each is required.
var abiExports = []struct {
	name     string
	sig      signature
	required bool
}{
	{ExportMarker, signature{}, true},
	{ExportAlloc, signature{[]api.ValueType{i32}, []api.ValueType{i32}}, true},
	{ExportDecide, signature{[]api.ValueType{i32, i32, i32, i32}, []api.ValueType{i64}}, true},
	{ExportInit, signature{[]api.ValueType{i32, i32}, []api.ValueType{i64}}, false},
}

// hostFunctions are husk's imports and their types.
var hostFunctions = map[string]struct {
	sig signature
	fn  api.GoModuleFunc
	arg []string
}{
	ImportLog:       {signature{[]api.ValueType{i32, i32, i32}, nil}, nil, []string{"level", "ptr", "len"}}, // bound per module
	ImportJSONIndex: {signature{[]api.ValueType{i32, i32}, []api.ValueType{i32}}, hostJSONIndex, []string{"ptr", "len"}},
	ImportJSONGet:   {signature{[]api.ValueType{i32, i32, i32}, []api.ValueType{i64}}, hostJSONGet, []string{"base", "ptr", "len"}},
	ImportJSONMatch: {signature{[]api.ValueType{i32, i32, i32}, []api.ValueType{i32}}, hostJSONMatch, []string{"off", "set", "mode"}},
	ImportSetNew:    {signature{[]api.ValueType{i32, i32}, []api.ValueType{i32}}, hostSetNew, []string{"ptr", "len"}},
}

// hostFunctionNames lists husk's imports, for error messages.
func hostFunctionNames() string {
	names := make([]string, 0, len(hostFunctions))
	for name := range hostFunctions {
		names = append(names, name)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// checkABI checks that compiled implements ABI version 1, before any of its
// code runs, and reports whether it exports husk_init.
func checkABI(compiled wazero.CompiledModule) (hasInit bool, err error) {
	exports := compiled.ExportedFunctions()
	if _, ok := exports[ExportMarker]; !ok {
		var others []string
		for name := range exports {
			if strings.HasPrefix(name, markerPrefix) {
				others = append(others, EscapeText(name))
			}
		}
		if len(others) > 0 {
			slices.Sort(others)
			return false, fmt.Errorf("exports %s but not %s: built for a hook ABI this husk does not support", strings.Join(others, ", "), ExportMarker)
		}
		return false, fmt.Errorf("does not export %s: not a husk hook module (see docs/hooks.md)", ExportMarker)
	}
	for _, want := range abiExports {
		def, ok := exports[want.name]
		if !ok {
			if want.required {
				return false, fmt.Errorf("does not export function %s%s", want.name, want.sig)
			}
			continue
		}
		got := signature{def.ParamTypes(), def.ResultTypes()}
		if !slices.Equal(got.params, want.sig.params) || !slices.Equal(got.results, want.sig.results) {
			return false, fmt.Errorf("exports %s%s, want %s%s", want.name, got, want.name, want.sig)
		}
		if want.name == ExportInit {
			hasInit = true
		}
	}
	if _, ok := compiled.ExportedMemories()[ExportMemory]; !ok {
		return false, fmt.Errorf("does not export its memory as %q", ExportMemory)
	}
	return hasInit, checkImports(compiled)
}

// checkImports checks that compiled imports only what a hook may: WASI
// preview 1 functions (which wazero checks by name at instantiation) and
// husk.log, and no memory. (Imported tables and globals, which nothing
// provides, fail instantiation with wazero's error naming them.)
func checkImports(compiled wazero.CompiledModule) error {
	for _, def := range compiled.ImportedFunctions() {
		mod, name, _ := def.Import()
		switch {
		case mod == wasiModule:
		case mod == ImportModule && hostFunctions[name].sig.params != nil:
			want := hostFunctions[name].sig
			got := signature{def.ParamTypes(), def.ResultTypes()}
			if !slices.Equal(got.params, want.params) || !slices.Equal(got.results, want.results) {
				return fmt.Errorf("imports %s.%s%s, want %s%s", mod, EscapeText(name), got, EscapeText(name), want)
			}
		default:
			return fmt.Errorf("imports %s.%s, which husk does not provide (a hook may import %s functions and husk's %s)",
				EscapeText(mod), EscapeText(name), wasiModule, hostFunctionNames())
		}
	}
	for _, def := range compiled.ImportedMemories() {
		mod, name, _ := def.Import()
		return fmt.Errorf("imports memory %s.%s: a hook must define and export its own memory", EscapeText(mod), EscapeText(name))
	}
	return nil
}

// unpack splits the i64 the ABI returns a buffer as into its pointer and
// length.
func unpack(v uint64) (ptr, n uint32) { return uint32(v >> 32), uint32(v) }
