package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/huskrt/husk/internal/containerdapi"
	"github.com/huskrt/husk/test/devenv"
)

// The image a container is made from, as hooks see it outside the CRI:
// through ctr, husk reads it from the container's record in containerd.

// otherImage tags the busybox image under a name allowed-images is not
// configured to allow, for the test, and returns that name.
func otherImage(t *testing.T) string {
	t.Helper()
	ref := "husk.local/other-" + strings.ToLower(name(t, "")) + ":latest"
	ctr(t, "image", "tag", devenv.BusyboxRef, ref)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _, _ = bench.Ctr(ctx, "image", "rm", ref)
	})
	return ref
}

// allowBusybox is a husk config whose allowed-images allows only the
// busybox image.
func allowBusybox(t *testing.T) string {
	t.Helper()
	return hookConfig(t, fmt.Sprintf(`
[[hook]]
name = "images"
module = %q
points = ["container.create"]

[hook.config]
images = [%q]
`, policy(t, "allowed-images"), strings.TrimSuffix(devenv.BusyboxRef, "latest")))
}

// TestAllowedImagesUnderCtr: allowed-images allows a container of a
// listed image run with ctr, and denies one of another image, naming
// it, even when the run sets the CRI's image annotation to a listed one.
func TestAllowedImagesUnderCtr(t *testing.T) {
	cfg := allowBusybox(t)
	other := otherImage(t)

	ok := name(t, "ok")
	cleanupContainer(t, ok)
	if out := ctr(t, "run", "--rm", "--runtime", husk, "--runtime-config-path", cfg, devenv.BusyboxRef, ok, "echo", "allowed"); out != "allowed\n" {
		t.Fatalf("run of the allowed image = %q", out)
	}

	for _, tt := range []struct {
		name string
		args []string
	}{
		{"other image", nil},
		{"forged CRI annotation", []string{"--annotation", "io.kubernetes.cri.image-name=" + devenv.BusyboxRef}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			id := name(t, "")
			cleanupContainer(t, id)
			args := slices.Concat([]string{"run", "--rm", "--runtime", husk, "--runtime-config-path", cfg}, tt.args, []string{other, id, "echo", "ran"})
			msg := ctrErr(t, args...)
			for _, want := range []string{`hook "images" denied container.create`, "image " + other + " is not allowed"} {
				if !strings.Contains(msg, want) {
					t.Errorf("ctr error lacks %q:\n%s", want, msg)
				}
			}
			requireClean(t, id)
		})
	}
}

// TestAllowedImagesUnknownImage: a container run from a root filesystem
// directory (ctr run --rootfs) has no image; allowed-images denies it as
// unknown rather than letting it through or naming an empty image.
func TestAllowedImagesUnknownImage(t *testing.T) {
	cfg := allowBusybox(t)
	id := name(t, "")
	cleanupContainer(t, id)
	msg := ctrErr(t, "run", "--rm", "--runtime", husk, "--runtime-config-path", cfg, "--rootfs", rootfsDir, id, "echo", "ran")
	for _, want := range []string{`hook "images" denied container.create`, "image unknown"} {
		if !strings.Contains(msg, want) {
			t.Errorf("ctr error lacks %q:\n%s", want, msg)
		}
	}
	requireClean(t, id)
}

// TestImageLookupCost measures the read husk makes per container of a pod
// with hooks: containerd's containers service Get, over a connection the
// shim keeps (the first read connects).
func TestImageLookupCost(t *testing.T) {
	b := needBench(t)
	id := name(t, "")
	cleanupContainer(t, id)
	ctr(t, "container", "create", "--runtime", husk, devenv.BusyboxRef, id, "true")
	start := time.Now()
	c, err := containerdapi.Dial(b.Address(), b.Namespace)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := testCtx(t)
	got, err := c.ImageOf(ctx, id)
	first := time.Since(start)
	if err != nil || got != devenv.BusyboxRef {
		t.Fatalf("image of %s: %q, %v; want %s", id, got, err, devenv.BusyboxRef)
	}
	const n = 200
	var each []time.Duration
	for range n {
		s := time.Now()
		if _, err := c.ImageOf(ctx, id); err != nil {
			t.Fatal(err)
		}
		each = append(each, time.Since(s))
	}
	slices.Sort(each)
	t.Logf("containers.Get: first (connecting) %v; then p50 %v, p99 %v over %d reads",
		first.Round(time.Microsecond), each[n/2].Round(time.Microsecond), each[n*99/100].Round(time.Microsecond), n)
	if each[n/2] > 100*time.Millisecond {
		t.Errorf("a record read takes %v (p50): too slow for every create of a pod with hooks", each[n/2])
	}
}
