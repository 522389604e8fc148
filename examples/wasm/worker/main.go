// Command worker is a long-running Wasm workload: it does a unit of work
// (hashing a block) every interval and reports progress, until it is
// stopped (ctr task kill: the runner ends it with 128+signal) or has done
// -n units. Try exec, pause/resume and stats on it:
//
//	ctr run -d --runtime io.containerd.husk.v2 husk.local/wasm/worker:latest w1
//	ctr task exec --exec-id x w1 /worker.wasm -n 1 -every 1ms
//	ctr task metrics w1; ctr task pause w1; ctr task resume w1; ctr task kill w1
package main

import (
	"crypto/sha256"
	"flag"
	"fmt"
	"os"
	"time"
)

func main() {
	n := flag.Int("n", 0, "units of work to do, then exit (0: forever)")
	every := flag.Duration("every", time.Second, "interval between units")
	flag.Parse()
	block := make([]byte, 1<<20)
	sum := sha256.Sum256(block)
	for i := 1; *n == 0 || i <= *n; i++ {
		time.Sleep(*every)
		sum = sha256.Sum256(append(block[:0:0], sum[:]...))
		fmt.Printf("unit %d done: %x\n", i, sum[:4])
	}
	fmt.Fprintln(os.Stderr, "worker: all done")
}
