package nested

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/huskrt/husk/internal/guestimage"
)

// TestNestedGuestImageBothVMMs boots the guest image the virt handler
// uses, with its agent, in the builtin hypervisor's confined VMM process
// and in QEMU microvm with vhost-vsock, in the same outer guest: in both
// the agent answers Check over vsock, and each VMM's memory is read as
// make bench's P10 reads it (logged here, compared there).
func TestNestedGuestImageBothVMMs(t *testing.T) {
	repo, as := nestedSetup(t, "about a minute")
	dir := t.TempDir()
	guest, err := BuildGuestImage(context.Background(), repo, dir)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "vmmem")
	if err := BuildVMMem(context.Background(), repo, bin); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	var tee io.Writer
	if testing.Verbose() {
		tee = prefixWriter{os.Stderr}
	}
	res, console, err := RunVMMem(ctx, as, bin, filepath.Join(guest, guestimage.KernelFile), filepath.Join(guest, guestimage.InitrdFile), 256, dir, tee)
	if err != nil {
		t.Fatalf("%v\nconsole ends:\n%s", err, tail(console, 80))
	}
	for name, m := range res {
		t.Logf("%s: agent after %.2f s; PSS %d KiB of which guest %d KiB: %d KiB beside the guest", name, m.AgentSecs, m.PSSKiB, m.GuestPSSKiB, m.OverheadPSSKiB())
	}
	// Where the builtin VMM's memory beside its guest is, by mapping.
	for _, l := range strings.Split(console, "\n") {
		if strings.HasPrefix(l, vmmemMap) {
			t.Log(strings.TrimSpace(strings.TrimPrefix(l, vmmemMap)))
		}
	}
}
