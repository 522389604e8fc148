package machine

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

var allGuests = []guest{longModeGuest, portIOGuest, mmioGuest, ioEventGuest, irqGuest, virtqGuest, cpuidGuest, spinGuest, tripleFaultGuest, sipiGuest, apGuest, pvhGuest}

// TestGuestEncodings reassembles each guest's asm with GNU as and checks
// the committed bytes match, so a wrong hand-written or hand-edited
// encoding cannot hide behind a comment.
func TestGuestEncodings(t *testing.T) {
	as, err := exec.LookPath("as")
	if err != nil {
		t.Skip("GNU as (binutils) not installed: cannot cross-check the guest encodings")
	}
	objcopy, err := exec.LookPath("objcopy")
	if err != nil {
		t.Skip("objcopy (binutils) not installed: cannot cross-check the guest encodings")
	}
	for _, g := range allGuests {
		t.Run(g.name, func(t *testing.T) {
			dir := t.TempDir()
			src := filepath.Join(dir, "g.s")
			obj := filepath.Join(dir, "g.o")
			bin := filepath.Join(dir, "g.bin")
			bits := g.bits
			if bits == 0 {
				bits = 64
			}
			text := fmt.Sprintf(".intel_syntax noprefix\n.code%d\n", bits) + g.asm
			if err := os.WriteFile(src, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command(as, "--64", "-o", obj, src).CombinedOutput(); err != nil {
				t.Fatalf("as: %v\n%s", err, out)
			}
			if out, err := exec.Command(objcopy, "-O", "binary", "-j", ".text", obj, bin).CombinedOutput(); err != nil {
				t.Fatalf("objcopy: %v\n%s", err, out)
			}
			want, err := os.ReadFile(bin)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(g.code, want) {
				t.Fatalf("committed bytes differ from the assembled asm\n got % x\nwant % x", g.code, want)
			}
		})
	}
}
