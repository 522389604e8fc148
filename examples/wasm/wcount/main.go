// Command wcount is a file-reading tool: it counts the lines, words and
// bytes of the files it is given (or of stdin), as wc does. Inside a Wasm
// container it sees the container's rootfs and mounts and nothing else.
//
//	ctr run --rm --runtime io.containerd.husk.v2 \
//	    --mount type=bind,src=$PWD,dst=/src,options=rbind:ro \
//	    husk.local/wasm/wcount:latest wc /wcount.wasm /src/main.go /etc/motd
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
)

type counts struct{ lines, words, bytes int }

func count(r io.Reader) (counts, error) {
	var c counts
	br := bufio.NewReader(r)
	inWord := false
	for {
		b, err := br.ReadByte()
		if err == io.EOF {
			return c, nil
		}
		if err != nil {
			return c, err
		}
		c.bytes++
		switch b {
		case '\n':
			c.lines++
			inWord = false
		case ' ', '\t', '\r', '\v', '\f':
			inWord = false
		default:
			if !inWord {
				c.words++
			}
			inWord = true
		}
	}
}

func main() {
	status := 0
	if len(os.Args) < 2 {
		c, err := count(os.Stdin)
		if err != nil {
			fmt.Fprintln(os.Stderr, "wcount:", err)
			os.Exit(1)
		}
		fmt.Printf("%7d %7d %7d\n", c.lines, c.words, c.bytes)
		return
	}
	var total counts
	for _, name := range os.Args[1:] {
		f, err := os.Open(name)
		if err != nil {
			fmt.Fprintln(os.Stderr, "wcount:", err)
			status = 1
			continue
		}
		c, err := count(f)
		f.Close()
		if err != nil {
			fmt.Fprintln(os.Stderr, "wcount:", name, err)
			status = 1
			continue
		}
		fmt.Printf("%7d %7d %7d %s\n", c.lines, c.words, c.bytes, name)
		total.lines, total.words, total.bytes = total.lines+c.lines, total.words+c.words, total.bytes+c.bytes
	}
	if len(os.Args) > 2 {
		fmt.Printf("%7d %7d %7d total\n", total.lines, total.words, total.bytes)
	}
	os.Exit(status)
}
