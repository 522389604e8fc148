package agent

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// maxShellLine bounds a line of the built-in debug shell.
const maxShellLine = 64 << 10

// shellPrompt is the built-in debug shell's prompt.
const shellPrompt = "husk-guest# "

// RunDebugShell is the guest's built-in debug shell, what a debug console
// runs when the guest image has no /bin/sh: a few commands to look around
// the guest (help lists them) and the running of any program by its path
// (a static busybox copied into a volume, a container's rootfs binary).
// It reads commands from in, one a line (words split at blanks; '...' and
// "..." quote), writes to out, and returns its exit status at "exit" or
// the end of in.
func RunDebugShell(in io.Reader, out io.Writer) int {
	sh := &debugShell{in: in, out: out}
	r := bufio.NewReaderSize(in, 4096)
	fmt.Fprintln(out, "husk guest debug shell: the guest's own namespaces (PID 1 is husk-agent); \"help\" lists the commands")
	for {
		fmt.Fprint(out, shellPrompt)
		line, err := readLine(r)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				fmt.Fprintln(out, "debug-shell:", err)
				return 1
			}
			fmt.Fprintln(out)
			return 0
		}
		words, err := splitWords(line)
		if err != nil {
			fmt.Fprintln(out, "debug-shell:", err)
			continue
		}
		if len(words) == 0 {
			continue
		}
		if words[0] == "exit" {
			code := 0
			if len(words) > 1 {
				if code, err = strconv.Atoi(words[1]); err != nil {
					code = 2
				}
			}
			return code
		}
		if err := sh.run(words); err != nil {
			fmt.Fprintf(out, "%s: %v\n", words[0], err)
		}
	}
}

// readLine reads one line of at most maxShellLine bytes, without its end.
func readLine(r *bufio.Reader) (string, error) {
	var b []byte
	for {
		chunk, isPrefix, err := r.ReadLine()
		if err != nil {
			if len(b) > 0 && errors.Is(err, io.EOF) {
				return string(b), nil
			}
			return "", err
		}
		b = append(b, chunk...)
		if len(b) > maxShellLine {
			return "", fmt.Errorf("a line longer than %d bytes", maxShellLine)
		}
		if !isPrefix {
			return strings.TrimSuffix(string(b), "\r"), nil
		}
	}
}

// splitWords splits line at blanks; '...' and "..." quote blanks.
func splitWords(line string) ([]string, error) {
	var (
		words []string
		cur   strings.Builder
		in    bool // cur has a word, maybe empty ("")
		quote rune
	)
	for _, r := range line {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, in = r, true
		case r == ' ' || r == '\t':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated %c quote", quote)
	}
	if in {
		words = append(words, cur.String())
	}
	return words, nil
}

type debugShell struct {
	in  io.Reader
	out io.Writer
}

// shellCommands are the built-in commands, with their help.
var shellCommands = []struct{ name, args, help string }{
	{"help", "", "this list"},
	{"exit", "[N]", "end the shell (and the console)"},
	{"echo", "WORD...", "print the words"},
	{"cat", "FILE...", "print files (/proc/self/mountinfo, /proc/meminfo, ...)"},
	{"ls", "[PATH...]", "list directories: mode, size, name"},
	{"cd", "DIR", "change directory"},
	{"pwd", "", "print the directory"},
	{"ps", "", "the guest's processes: pid, ppid, state, command line"},
	{"ip", "", "the guest's interfaces and addresses"},
	{"env", "", "the shell's environment"},
	{"kill", "PID [SIGNAL]", "signal a process (default TERM)"},
	{"/PATH, ./PATH", "[ARG...]", "run a program on this terminal"},
}

func (sh *debugShell) run(w []string) error {
	out := sh.out
	switch w[0] {
	case "help":
		for _, c := range shellCommands {
			fmt.Fprintf(out, "  %-14s %-13s %s\n", c.name, c.args, c.help)
		}
	case "echo":
		fmt.Fprintln(out, strings.Join(w[1:], " "))
	case "cat":
		for _, p := range w[1:] {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(out, f)
			f.Close()
			if err != nil {
				return err
			}
		}
	case "ls":
		dirs := w[1:]
		if len(dirs) == 0 {
			dirs = []string{"."}
		}
		for _, d := range dirs {
			if err := sh.ls(d, len(dirs) > 1); err != nil {
				return err
			}
		}
	case "cd":
		if len(w) != 2 {
			return errors.New("want one directory")
		}
		return os.Chdir(w[1])
	case "pwd":
		d, err := os.Getwd()
		if err != nil {
			return err
		}
		fmt.Fprintln(out, d)
	case "ps":
		return sh.ps()
	case "ip":
		return sh.ip()
	case "env":
		for _, e := range os.Environ() {
			fmt.Fprintln(out, e)
		}
	case "kill":
		return sh.kill(w[1:])
	default:
		if !strings.HasPrefix(w[0], "/") && !strings.HasPrefix(w[0], "./") {
			return errors.New("no such command (help lists them; a program is run by its path)")
		}
		cmd := exec.Command(w[0], w[1:]...)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = sh.in, out, out
		err := cmd.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			fmt.Fprintf(out, "[%s]\n", exitText(err))
			return nil
		}
		return err
	}
	return nil
}

func (sh *debugShell) ls(dir string, title bool) error {
	st, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		fmt.Fprintf(sh.out, "%s %10d %s\n", st.Mode(), st.Size(), dir)
		return nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	if title {
		fmt.Fprintf(sh.out, "%s:\n", dir)
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			continue // gone since
		}
		name := e.Name()
		if info.Mode()&os.ModeSymlink != 0 {
			if t, err := os.Readlink(filepath.Join(dir, name)); err == nil {
				name += " -> " + t
			}
		}
		fmt.Fprintf(sh.out, "%s %10d %s\n", info.Mode(), info.Size(), name)
	}
	return nil
}

func (sh *debugShell) ps() error {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return err
	}
	var pids []int
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, pid)
		}
	}
	sort.Ints(pids)
	fmt.Fprintf(sh.out, "%7s %7s %s %s\n", "PID", "PPID", "S", "COMMAND")
	for _, pid := range pids {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue // gone since
		}
		// pid (comm) state ppid ...: comm may hold anything, so the
		// fields after it are found from its last ')'.
		s := string(stat)
		i, j := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if i < 0 || j < i {
			continue
		}
		comm, rest := s[i+1:j], strings.Fields(s[j+1:])
		if len(rest) < 2 {
			continue
		}
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		args := strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " "))
		if args == "" {
			args = "[" + comm + "]"
		}
		fmt.Fprintf(sh.out, "%7d %7s %s %s\n", pid, rest[1], rest[0], args)
	}
	return nil
}

func (sh *debugShell) ip() error {
	ifs, err := net.Interfaces()
	if err != nil {
		return err
	}
	for _, i := range ifs {
		fmt.Fprintf(sh.out, "%d: %s <%v> mtu %d %s\n", i.Index, i.Name, i.Flags, i.MTU, i.HardwareAddr)
		addrs, _ := i.Addrs()
		for _, a := range addrs {
			fmt.Fprintf(sh.out, "    %s\n", a)
		}
	}
	return nil
}

func (sh *debugShell) kill(args []string) error {
	if len(args) < 1 || len(args) > 2 {
		return errors.New("want PID [SIGNAL]")
	}
	pid, err := strconv.Atoi(args[0])
	if err != nil || pid <= 0 {
		return fmt.Errorf("pid %q: want a positive number", args[0])
	}
	if pid == 1 {
		return errors.New("pid 1 is husk-agent: ending it ends the VM")
	}
	sig := syscall.SIGTERM
	if len(args) == 2 {
		n, err := strconv.Atoi(args[1])
		if err != nil || n <= 0 || n > 64 {
			return fmt.Errorf("signal %q: want a number from 1 to 64", args[1])
		}
		sig = syscall.Signal(n)
	}
	return syscall.Kill(pid, sig)
}
