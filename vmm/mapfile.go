package vmm

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// mapFile maps the file at path read-only and returns its bytes and the
// function that unmaps them. The kernel and initrd are copied into guest
// memory once and never read again: read into the heap, their 25 MiB
// (Debian's kernel and the agent's initrd) would stay in the VMM's
// resident memory long after, since Go returns freed heap to the system
// slowly; mapped, they leave with the unmap.
func mapFile(path string) ([]byte, func(), error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%s: not a regular file", path)
	}
	if st.Size() == 0 {
		return nil, func() {}, nil
	}
	if st.Size() > 1<<31 {
		return nil, nil, fmt.Errorf("%s: %d bytes, too large to boot", path, st.Size())
	}
	b, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_PRIVATE)
	if err != nil {
		return nil, nil, fmt.Errorf("mapping %s: %w", path, err)
	}
	return b, func() { _ = unix.Munmap(b) }, nil
}
