package boot

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// testImage describes a synthetic bzImage; fakeBzImage builds it.
type testImage struct {
	setupSects    byte
	version       uint16
	loadFlags     byte
	xloadFlags    uint16
	jump          byte // header length byte at 0x201
	initrdAddrMax uint32
	cmdlineSize   uint32
	prefAddress   uint64
	initSize      uint32
	kernelSize    int
}

func goodImage() testImage {
	return testImage{
		setupSects:    4,
		version:       0x020f,
		loadFlags:     loadedHigh,
		xloadFlags:    xlfKernel64 | 2,
		jump:          0x6a, // header ends at 0x26c, as in Linux 6.1
		initrdAddrMax: 0x7fff_ffff,
		cmdlineSize:   2047,
		prefAddress:   0x100_0000,
		initSize:      0x40_0000,
		kernelSize:    0x1000,
	}
}

func fakeBzImage(ti testImage) []byte {
	sects := int(ti.setupSects)
	if sects == 0 {
		sects = defaultSetupSects
	}
	b := make([]byte, (sects+1)*512+ti.kernelSize)
	le := binary.LittleEndian
	b[hdrSetupSects] = ti.setupSects
	le.PutUint16(b[hdrBootFlag:], bootFlagValue)
	b[hdrJump], b[hdrJump+1] = 0xeb, ti.jump
	le.PutUint32(b[hdrMagic:], magicValue)
	le.PutUint16(b[hdrVersion:], ti.version)
	b[hdrLoadFlags] = ti.loadFlags
	le.PutUint32(b[hdrInitrdAddrMax:], ti.initrdAddrMax)
	le.PutUint32(b[hdrKernelAlign:], 0x20_0000)
	b[hdrRelocatable] = 1
	le.PutUint16(b[hdrXLoadFlags:], ti.xloadFlags)
	le.PutUint32(b[hdrCmdlineSize:], ti.cmdlineSize)
	le.PutUint64(b[hdrPrefAddress:], ti.prefAddress)
	le.PutUint32(b[hdrInitSize:], ti.initSize)
	// Mark the protected-mode code so tests can find it in guest memory.
	k := b[(sects+1)*512:]
	for i := range k {
		k[i] = byte(i*7 + 1)
	}
	return b
}

func TestParseBzImageRejectsBadImages(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(*testImage)
		mangle func([]byte) []byte
		want   error
	}{
		{"empty", nil, func([]byte) []byte { return nil }, ErrNotBzImage},
		{"shorter than the header", nil, func(b []byte) []byte { return b[:hdrEnd-1] }, ErrNotBzImage},
		{"no boot flag", nil, func(b []byte) []byte { b[hdrBootFlag] = 0; return b }, ErrNotBzImage},
		{"no HdrS", nil, func(b []byte) []byte { b[hdrMagic] = 'X'; return b }, ErrNotBzImage},
		{"protocol 2.11", func(ti *testImage) { ti.version = 0x020b }, nil, ErrProtocol},
		{"zImage (not loaded high)", func(ti *testImage) { ti.loadFlags = 0 }, nil, ErrProtocol},
		{"no 64-bit entry", func(ti *testImage) { ti.xloadFlags = 2 }, nil, ErrProtocol},
		{"header ends before its fields", func(ti *testImage) { ti.jump = 0x10 }, nil, ErrBadImage},
		{"header ends past the image", func(ti *testImage) { ti.jump = 0xff }, func(b []byte) []byte { return b[:0x280] }, ErrBadImage},
		{"setup sectors past the image", func(ti *testImage) { ti.setupSects = 200 }, func(b []byte) []byte { return b[:0x1000] }, ErrBadImage},
		{"no room for the 64-bit entry", func(ti *testImage) { ti.kernelSize = 0x200 }, nil, ErrBadImage},
		{"init_size below the kernel size", func(ti *testImage) { ti.initSize = 0x10 }, nil, ErrBadImage},
		{"cmdline_size 0", func(ti *testImage) { ti.cmdlineSize = 0 }, nil, ErrBadImage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ti := goodImage()
			if tt.edit != nil {
				tt.edit(&ti)
			}
			b := fakeBzImage(ti)
			if tt.mangle != nil {
				b = tt.mangle(b)
			}
			img, err := ParseBzImage(bytes.NewReader(b))
			if !errors.Is(err, tt.want) {
				t.Fatalf("ParseBzImage = %+v, %v; want %v", img, err, tt.want)
			}
			t.Log(err) // the message is what an operator sees
		})
	}
}

func TestParseBzImageReadsTheHeader(t *testing.T) {
	ti := goodImage()
	b := fakeBzImage(ti)
	img, err := ParseBzImage(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if img.Version != ti.version || img.InitrdAddrMax != ti.initrdAddrMax || img.CmdlineSize != ti.cmdlineSize || img.InitSize != ti.initSize {
		t.Errorf("parsed %+v from %+v", img, ti)
	}
	if len(img.Header) != 0x26c-hdrSetupSects {
		t.Errorf("header is %#x bytes, want up to 0x26c", len(img.Header))
	}
	if n, first := img.Kernel.Size(), firstByte(img.Kernel); n != int64(ti.kernelSize) || first != 1 {
		t.Errorf("protected-mode code: %d bytes starting %#x", n, first)
	}
	ti.setupSects = 0 // means 4
	if img, err := ParseBzImage(bytes.NewReader(fakeBzImage(ti))); err != nil || img.Kernel.Size() != int64(ti.kernelSize) || firstByte(img.Kernel) != 1 {
		t.Errorf("setup_sects 0 (meaning 4): %+v, %v", img, err)
	}
}

func firstByte(r io.ReaderAt) byte {
	var b [1]byte
	r.ReadAt(b[:], 0)
	return b[0]
}

// TestParseDebianKernel parses the cloud kernel the nested harness boots,
// when hack/nested-assets.sh has cached it.
func TestParseDebianKernel(t *testing.T) {
	matches, _ := filepath.Glob("../../.tools/kernel/cloud-amd64/boot/vmlinuz-*")
	if len(matches) == 0 {
		t.Skip("no cached kernel: run make nested-assets")
	}
	b, err := os.ReadFile(matches[0])
	if err != nil {
		t.Fatal(err)
	}
	img, err := ParseBzImage(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: protocol %#x, %d-byte kernel, init_size %#x, initrd_addr_max %#x, cmdline_size %d",
		filepath.Base(matches[0]), img.Version, img.Kernel.Size(), img.InitSize, img.InitrdAddrMax, img.CmdlineSize)
}
