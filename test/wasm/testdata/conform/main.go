// Command conform is the WASI conformance probe of husk's Wasm tests
// (GOOS=wasip1). Each subcommand exercises one part of WASI preview1 and
// prints a deterministic result the test compares, or "FAIL: why" and exits
// 1.
package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fail("usage: conform args|env|cwd|files|ro|clocks|random|exit|stdin|read|grow|loop ...")
	}
	arg := os.Args[2:]
	switch os.Args[1] {
	case "args":
		for _, a := range os.Args {
			fmt.Printf("[%s]\n", a)
		}
	case "env":
		for _, k := range arg {
			v, ok := os.LookupEnv(k)
			fmt.Printf("%s=%s %v\n", k, v, ok)
		}
	case "cwd":
		wd, err := os.Getwd()
		check(err)
		fmt.Println(wd)
		b, err := os.ReadFile(arg[0]) // relative to the cwd
		check(err)
		fmt.Print(string(b))
	case "files":
		files(arg[0])
	case "ro":
		err := os.WriteFile(arg[0], []byte("x"), 0o644)
		switch {
		case err == nil:
			fail("wrote " + arg[0])
		case errors.Is(err, syscall.EROFS):
			fmt.Println("read-only")
		default:
			fail(err.Error())
		}
	case "clocks":
		clocks(arg[0])
	case "random":
		a, b := make([]byte, 32), make([]byte, 32)
		_, err := rand.Read(a)
		check(err)
		_, err = rand.Read(b)
		check(err)
		if bytes.Equal(a, b) || bytes.Equal(a, make([]byte, 32)) {
			fail("random bytes repeat")
		}
		fmt.Println("random ok")
	case "exit":
		n, err := strconv.Atoi(arg[0])
		check(err)
		fmt.Println("exiting", n)
		os.Exit(n)
	case "stdin":
		s := bufio.NewScanner(os.Stdin)
		n := 0
		for s.Scan() {
			n++
			fmt.Println(strings.ToUpper(s.Text()))
		}
		check(s.Err())
		fmt.Println("lines", n)
	case "read":
		// For the escape tests: print what each path gives.
		for _, p := range arg {
			b, err := os.ReadFile(p)
			if err != nil {
				fmt.Printf("%s: error %v\n", p, errors.Unwrap(err))
				continue
			}
			fmt.Printf("%s: %q\n", p, strings.TrimSpace(string(b)))
		}
	case "grow":
		// A memory bomb: 1 MiB more, forever.
		var keep [][]byte
		for i := 0; ; i++ {
			b := make([]byte, 1<<20)
			for j := range b {
				b[j] = byte(j)
			}
			keep = append(keep, b)
			if i%64 == 0 {
				fmt.Println("MiB", i)
			}
		}
	case "loop":
		fmt.Println("looping")
		for {
		}
	default:
		fail("unknown subcommand " + os.Args[1])
	}
}

func files(dir string) {
	p := dir + "/f"
	check(os.WriteFile(p, []byte("hello\n"), 0o600))
	f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	check(err)
	_, err = f.WriteString("world\n")
	check(err)
	check(f.Close())
	check(os.Rename(p, dir+"/g"))
	st, err := os.Stat(dir + "/g")
	check(err)
	check(os.Mkdir(dir+"/sub", 0o755))
	check(os.Symlink("g", dir+"/link"))
	b, err := os.ReadFile(dir + "/link")
	check(err)
	ents, err := os.ReadDir(dir)
	check(err)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	fmt.Printf("size %d dir %v content %q\n", st.Size(), names, b)
	check(os.Remove(dir + "/link"))
	check(os.Remove(dir + "/g"))
	check(os.Remove(dir + "/sub"))
	if _, err := os.Stat(dir + "/g"); !errors.Is(err, fs.ErrNotExist) {
		fail(fmt.Sprintf("stat after remove: %v", err))
	}
	fmt.Println("files ok")
}

// clocks checks the wall clock against the host's (unix seconds in arg),
// the monotonic clock and sleeping.
func clocks(hostUnix string) {
	host, err := strconv.ParseInt(hostUnix, 10, 64)
	check(err)
	if d := time.Now().Unix() - host; d < -60 || d > 600 {
		fail(fmt.Sprintf("wall clock is %d s off the host's", d))
	}
	t0 := time.Now()
	time.Sleep(50 * time.Millisecond)
	if e := time.Since(t0); e < 50*time.Millisecond || e > 5*time.Second {
		fail(fmt.Sprintf("slept 50ms, monotonic clock says %v", e))
	}
	fmt.Println("clocks ok")
}

func check(err error) {
	if err != nil {
		fail(err.Error())
	}
}

func fail(msg string) {
	fmt.Println("FAIL:", msg)
	io.WriteString(os.Stderr, msg+"\n")
	os.Exit(1)
}
