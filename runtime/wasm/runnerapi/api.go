// Package runnerapi is the contract between the shim (runtime/wasm) and
// the Wasm runner (runtime/wasm/runner, cmd/husk-wasm-runner): the
// runner's command line and exit statuses and the compile options both
// sides must agree on. It imports nothing, so the Wasm handler links no
// wazero: workloads' modules are compiled (the runner's -precompile, run on
// the host) and run by the runner, never in the shim's process. (The shim
// does link wazero, for hook modules: package wasmhost, which never runs a
// workload.)
package runnerapi

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
