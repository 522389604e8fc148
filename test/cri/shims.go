// Package cri runs pods through containerd's CRI plugin with crictl, on a
// private containerd (test/devenv with Options.CRI): the CNI bridge of the
// bench, the locally built pause image, no registry. Each test runs once per
// runtime handler (runc, the baseline, and husk). It needs root and the tools
// `make tools` installs; without them every test skips and says why.
//
// This file holds what the tests share with other packages: finding the shim
// processes of a containerd and which tasks each serves, for "one shim per
// pod".
package cri

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Shim is a running containerd shim (containerd-shim-*), as its command line
// shows it.
type Shim struct {
	Pid int
	// Binary is the executable's base name, e.g. containerd-shim-husk-v2.
	Binary string
	// Namespace, ID and Address are the -namespace, -id and -address flags:
	// ID is the task the shim was started for (for a pod, the sandbox id,
	// since the sandbox is the pod's first task), Address the containerd
	// it serves.
	Namespace, ID, Address string
}

// Shims lists the shim processes serving the containerd at address (its
// gRPC socket), by reading /proc/<pid>/cmdline, sorted by pid. A long-running
// shim is started as `containerd-shim-<name> -namespace <ns> -id <id>
// -address <addr>` by both the runc and the husk shim; the short-lived
// `... start` and `... delete` invocations are left out.
func Shims(address string) ([]Shim, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("cri: %w", err)
	}
	var out []Shim
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(b) == 0 {
			continue // gone, or a kernel thread
		}
		if s, ok := parseShimCmdline(pid, b); ok && s.Address == address {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Pid < out[j].Pid })
	return out, nil
}

// parseShimCmdline recognises a long-running shim's NUL-separated command
// line.
func parseShimCmdline(pid int, cmdline []byte) (Shim, bool) {
	args := strings.Split(string(bytes.TrimRight(cmdline, "\x00")), "\x00")
	s := Shim{Pid: pid, Binary: filepath.Base(args[0])}
	if !strings.HasPrefix(s.Binary, "containerd-shim-") {
		return Shim{}, false
	}
	// containerd puts the subcommand of a short-lived invocation last:
	// `... -id <id> start`.
	if n := len(args); n >= 2 && (args[n-1] == "start" || args[n-1] == "delete") && !strings.HasPrefix(args[n-2], "-") {
		return Shim{}, false
	}
	for i := 1; i < len(args); i++ {
		switch args[i] {
		case "-namespace", "--namespace":
			s.Namespace = value(args, i)
		case "-id", "--id":
			s.ID = value(args, i)
		case "-address", "--address":
			s.Address = value(args, i)
		}
	}
	return s, s.ID != ""
}

// value returns the argument after args[i], or "".
func value(args []string, i int) string {
	if i+1 < len(args) {
		return args[i+1]
	}
	return ""
}

// ShimOf returns the shim among shims that a task process pid runs under:
// the nearest ancestor of pid that is one of them (runc's and husk's shims
// are subreapers, so a container's init is the shim's child).
func ShimOf(pid int, shims []Shim) (Shim, error) {
	for p, hops := pid, 0; p > 1 && hops < 64; hops++ {
		for _, s := range shims {
			if s.Pid == p {
				return s, nil
			}
		}
		pp, err := ppid(p)
		if err != nil {
			return Shim{}, err
		}
		p = pp
	}
	return Shim{}, fmt.Errorf("cri: pid %d runs under none of the shims %v", pid, shims)
}

// ppid returns the parent of pid from /proc/<pid>/stat.
func ppid(pid int) (int, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, fmt.Errorf("cri: %w", err)
	}
	// pid (comm) state ppid ...; comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("cri: malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0, fmt.Errorf("cri: malformed /proc/%d/stat", pid)
	}
	return strconv.Atoi(f[1])
}
