// Command hello is the smallest Wasm workload: a Go program built for WASI
// (GOOS=wasip1 GOARCH=wasm) that greets whoever its arguments name.
//
//	./build.sh && ctr run --rm --runtime io.containerd.husk.v2 husk.local/wasm/hello:latest hello /hello.wasm husk
package main

import (
	"fmt"
	"os"
	"strings"
)

func main() {
	who := "world"
	if len(os.Args) > 1 {
		who = strings.Join(os.Args[1:], " ")
	}
	fmt.Printf("hello, %s, from WebAssembly\n", who)
}
