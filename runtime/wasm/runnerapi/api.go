// Package runnerapi is the contract between the shim (runtime/wasm) and
// the Wasm runner (runtime/wasm/runner, cmd/husk-wasm-runner): the
// runner's command line and exit statuses and the compile options both
// sides must agree on. It imports nothing but the standard library, so the Wasm handler links no
// wazero: workloads' modules are compiled (the runner's -precompile, run on
// the host) and run by the runner, never in the shim's process. (The shim
// does link wazero, for hook modules: package wasmhost, which never runs a
// workload.)
package runnerapi

import (
	"fmt"
	"path"
	"strconv"
	"strings"
)

// Flags of the runner's command line, which the shim writes:
//
//	husk-wasm-runner [-module path] [-func name] [-pages n] [-cache dir] -- args...
//	husk-wasm-runner -precompile -cache dir < module.wasm
const (
	FlagModule     = "module"     // the module file, as a path in the container
	FlagFunc       = "func"       // the export to run instead of _start
	FlagPages      = "pages"      // the memory limit in 64 KiB pages
	FlagCache      = "cache"      // a (read-only) compilation cache directory
	FlagPrecompile = "precompile" // compile stdin into -cache and exit (on the host, for the shim)
)

// MaxPages is the most a 32-bit Wasm memory can have (4 GiB).
const MaxPages = 65536

// PageSize is the size of a Wasm memory page.
const PageSize = 64 << 10

// EnsureTermination is whether the runner's compiled code checks for
// cancellation (wazero's WithCloseOnContextDone): part of the cache key.
// The runner never cancels a module (a signal ends the process), so no.
const EnsureTermination = false

// Exit statuses of the runner besides the module's own.
const (
	// TrapStatus: the module trapped, or wazero could not instantiate it:
	// 128+SIGABRT, as wasmtime reports a trap.
	TrapStatus = 134
	// NoModule: the module file cannot be read.
	NoModule = 127
	// BadModule: the module cannot be compiled or lacks the export asked for.
	BadModule = 126
	// Usage: a bad command line.
	Usage = 125
)

// WASIPreview1 are the functions of WASI preview 1 (wasi_snapshot_preview1),
// a frozen interface, all of which the runner provides (wazero implements
// every one; a test checks the list against wazero).
var WASIPreview1 = []string{
	"args_get", "args_sizes_get", "environ_get", "environ_sizes_get",
	"clock_res_get", "clock_time_get",
	"fd_advise", "fd_allocate", "fd_close", "fd_datasync", "fd_fdstat_get",
	"fd_fdstat_set_flags", "fd_fdstat_set_rights", "fd_filestat_get",
	"fd_filestat_set_size", "fd_filestat_set_times", "fd_pread",
	"fd_prestat_get", "fd_prestat_dir_name", "fd_pwrite", "fd_read",
	"fd_readdir", "fd_renumber", "fd_seek", "fd_sync", "fd_tell", "fd_write",
	"path_create_directory", "path_filestat_get", "path_filestat_set_times",
	"path_link", "path_open", "path_readlink", "path_remove_directory",
	"path_rename", "path_symlink", "path_unlink_file",
	"poll_oneoff", "proc_exit", "proc_raise", "sched_yield", "random_get",
	"sock_accept", "sock_recv", "sock_send", "sock_shutdown",
}

// WASIModule is the import module name of WASI preview 1.
const WASIModule = "wasi_snapshot_preview1"

// FlagNoHome tells the runner that the process's spec set no HOME (or an
// empty one), so that the HOME it finds in its environment is the one
// libcontainer adds (the user's home from the container's /etc/passwd):
// the runner drops it, and the module sees exactly the spec's environment.
const FlagNoHome = "nohome"

// FlagPreopens is the runner's flag listing the directories it preopens
// for the module, in the format of the io.husk.wasm.preopens annotation
// (ParsePreopens). Without it the runner preopens DefaultPreopens.
const FlagPreopens = "preopens"

// DefaultPreopens is what the runner preopens when told nothing: the
// container's root filesystem, as "/".
const DefaultPreopens = "/"

// Bounds of a preopen list: entries, and bytes of one entry.
const (
	MaxPreopens      = 32
	MaxPreopenLength = 4096
)

// Preopen is one directory preopened for a module: Dir is a path in the
// container (absolute, clean), Name what the module sees in
// fd_prestat_dir_name.
type Preopen struct {
	Dir, Name string
}

// ParsePreopens parses a preopen list: entries separated by ",", each
// "dir" or "dir:name", dir an absolute clean path in the container and
// name (dir when absent) the module's name for it; neither holds NUL,
// "," or ":", and no name comes twice. The empty list preopens nothing.
// The error says what is wrong with which entry.
func ParsePreopens(s string) ([]Preopen, error) {
	if s == "" {
		return nil, nil
	}
	entries := strings.Split(s, ",")
	if len(entries) > MaxPreopens {
		return nil, fmt.Errorf("preopen list has %d entries, more than %d", len(entries), MaxPreopens)
	}
	out := make([]Preopen, 0, len(entries))
	for _, e := range entries {
		q := strconv.Quote(e)
		if len(e) > MaxPreopenLength {
			return nil, fmt.Errorf("preopen %.40q...: longer than %d bytes", e, MaxPreopenLength)
		}
		dir, name, named := strings.Cut(e, ":")
		if !named {
			name = dir
		}
		switch {
		case dir == "":
			return nil, fmt.Errorf("preopen %s: no directory", q)
		case name == "":
			return nil, fmt.Errorf("preopen %s: empty name", q)
		case strings.ContainsAny(e, "\x00") || strings.Contains(name, ":"):
			return nil, fmt.Errorf("preopen %s: holds a NUL or a second \":\"", q)
		case dir[0] != '/':
			return nil, fmt.Errorf("preopen %s: %s is not an absolute path in the container", q, dir)
		case path.Clean(dir) != dir:
			return nil, fmt.Errorf("preopen %s: %s is not a clean path (want %s)", q, dir, path.Clean(dir))
		}
		for _, o := range out {
			if o.Name == name {
				return nil, fmt.Errorf("preopen %s: the name %q comes twice", q, name)
			}
		}
		out = append(out, Preopen{Dir: dir, Name: name})
	}
	return out, nil
}
