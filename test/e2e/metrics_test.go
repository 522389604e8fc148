package e2e

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/huskrt/husk/runtime/config"
	"github.com/huskrt/husk/runtime/persist"
	"github.com/huskrt/husk/shim"
	"github.com/huskrt/husk/test/devenv"
)

// TestManagementSocket: each shim serves Prometheus metrics and pprof on a
// socket only root can reach (R8: 0600 in 0700 directories).
func TestManagementSocket(t *testing.T) {
	needBench(t)
	id := name(t, "")
	cleanupContainer(t, id)
	ctr(t, "run", "-d", "--runtime", husk, devenv.BusyboxRef, id, "sleep", "1000")
	ctr(t, "task", "exec", "--exec-id", "m1", id, "true")

	cfg, err := config.Load(config.Path(""))
	if err != nil {
		t.Fatal(err)
	}
	dir := persist.Dir(cfg.Runtime.StateDir, bench.Namespace, id)
	sock := filepath.Join(dir, shim.ManagementSocket)
	for _, c := range []struct {
		path string
		want os.FileMode
	}{{cfg.Runtime.StateDir, 0o700}, {filepath.Dir(dir), 0o700}, {dir, 0o700}, {sock, 0o600}, {filepath.Join(dir, "state.json"), 0o600}} {
		fi, err := os.Stat(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != c.want {
			t.Errorf("%s has mode %v, want %v", c.path, fi.Mode().Perm(), c.want)
		}
	}

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}}}
	get := func(path string) string {
		resp, err := client.Get("http://shim" + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s", path, resp.Status)
		}
		return string(b)
	}
	m := get("/metrics")
	for _, want := range []string{"husk_tasks 1", `husk_task_creates_total{result="ok"} 1`, "husk_execs_total 1", "go_goroutines", "process_resident_memory_bytes"} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if p := get("/debug/pprof/"); !strings.Contains(p, "goroutine") {
		t.Errorf("pprof index: %q", p)
	}
}
