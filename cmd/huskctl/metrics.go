package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/containerd/errdefs"

	"github.com/huskrt/husk/shim"
)

// runMetrics prints a sandbox shim's Prometheus metrics, read from its
// management socket.
func runMetrics(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("metrics", flag.ContinueOnError)
	pf := addPodFlags(fs)
	path := fs.String("path", "/metrics", "what to fetch: /metrics, or a pprof page under /debug/pprof/")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: huskctl metrics [--namespace NS] [--path /metrics] <sandbox-id>")
		fs.PrintDefaults()
	}
	stateDir, id, err := pf.parse(fs, args)
	if err != nil {
		return err
	}
	sock, err := managementSocket(stateDir, *pf.ns, id)
	if err != nil {
		return err
	}
	client := &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://shim"+*path, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("asking the shim of %s: %w", fs.Arg(0), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("shim answered %s", resp.Status)
	}
	_, err = io.Copy(os.Stdout, resp.Body)
	return err
}

// managementSocket finds the socket of sandbox id, in namespace ns or, when
// ns is empty, in whichever namespace has it.
func managementSocket(stateDir, ns, id string) (string, error) {
	dir, err := podDir(stateDir, ns, id)
	if err != nil {
		return "", err
	}
	sock := filepath.Join(dir, shim.ManagementSocket)
	if _, err := os.Stat(sock); err != nil {
		return "", fmt.Errorf("sandbox %s has no running shim (no %s): %w", id, sock, errdefs.ErrNotFound)
	}
	return sock, nil
}
