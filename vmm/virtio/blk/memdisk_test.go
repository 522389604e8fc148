package blk

import (
	"errors"
	"io"
)

// memDisk is a Backend in memory that counts writes and syncs.
type memDisk struct {
	b       []byte
	writes  int
	syncs   int
	failing bool
	// outside is set by an access beyond the disk: the device must never
	// make one.
	outside bool
}

func (m *memDisk) ReadAt(p []byte, off int64) (int, error) {
	if m.failing {
		return 0, errors.New("EIO")
	}
	if off < 0 || off > int64(len(m.b)) || int64(len(p)) > int64(len(m.b))-off {
		m.outside = true
		return 0, io.EOF
	}
	n := copy(p, m.b[off:])
	return n, nil
}

func (m *memDisk) WriteAt(p []byte, off int64) (int, error) {
	m.writes++
	if m.failing {
		return 0, errors.New("EIO")
	}
	if off < 0 || off > int64(len(m.b)) || int64(len(p)) > int64(len(m.b))-off {
		m.outside = true
		return 0, errors.New("write past the end")
	}
	return copy(m.b[off:], p), nil
}

func (m *memDisk) Sync() error {
	m.syncs++
	if m.failing {
		return errors.New("EIO")
	}
	return nil
}
