package vmm

import (
	"fmt"
	"io"
	"os"
)

// maxImage bounds a kernel or initrd file.
const maxImage = 1 << 31

// openBootFile opens the kernel or initrd at path for boot.Load, which reads
// each part with pread straight into guest memory where it goes: the
// bytes pass through no buffer of the VMM's own (no heap copy to keep or
// free, no mapping of the file to fault in and unmap), and the kernel
// copies them once, from its page cache. The caller closes the file.
func openBootFile(path string) (*os.File, *io.SectionReader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, nil, fmt.Errorf("%s: not a regular file", path)
	}
	if st.Size() > maxImage {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %d bytes, too large to boot", path, st.Size())
	}
	return f, io.NewSectionReader(f, 0, st.Size()), nil
}
