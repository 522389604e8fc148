package virt

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/huskrt/husk/agent/api"
)

// Bounds of a host volume copied into a VM: one SyncVolume request
// carries a whole volume, under ttrpc's 4 MiB message limit. ConfigMaps
// and Secrets are at most 1 MiB each in Kubernetes.
const (
	maxVolumeEntries = 16384
	maxVolumeBytes   = 3 << 20
	maxVolumePath    = 4096
)

// resyncInterval is how often the read-only volumes of a pod are compared
// with their host sources (a stat walk; contents are read only when a
// file changed); a variable for tests.
var resyncInterval = time.Second

// volumeID names a host source's copy in the guest: the same source, the
// same copy, so the containers of a pod share an emptyDir.
func volumeID(source string) string {
	sum := sha256.Sum256([]byte(filepath.Clean(source)))
	return "v-" + hex.EncodeToString(sum[:16])
}

// isBind reports whether m is a bind mount (of a host path).
func isBind(m *specs.Mount) bool {
	return m.Type == "bind" || slices.Contains(m.Options, "bind") || slices.Contains(m.Options, "rbind")
}

// stamp is what a stat says of a file, to tell whether it changed.
type stamp struct {
	typ            api.FileEntry_Type
	mode, uid, gid uint32
	size           int64
	mtime, ctime   int64
	ino, dev       uint64
	target         string // a symlink's
}

// walked is a host volume as walkVolume read it.
type walked struct {
	entries []*api.FileEntry
	stamps  map[string]stamp
	// skipped are the paths that cannot reach a guest (sockets, devices,
	// FIFOs, symlinks that are absolute or lead out of the volume).
	skipped []string
}

// sameTree reports whether two walks saw the same files, unchanged.
func sameTree(a, b map[string]stamp) bool {
	if len(a) != len(b) {
		return false
	}
	for p, s := range a {
		if t, ok := b[p]; !ok || s != t {
			return false
		}
	}
	return true
}

// linkInside reports whether a symlink's target is relative and stays in
// the volume once joined to the link's directory (what the agent takes).
func linkInside(rel, target string) bool {
	if target == "" || path.IsAbs(target) || len(target) > maxVolumePath {
		return false
	}
	j := path.Join(path.Dir(rel), target)
	return j != ".." && !strings.HasPrefix(j, "../")
}

// walkVolume reads the host tree at source (a directory or a regular
// file; symlinks to one are followed at the root only) into the entries of
// a SyncVolume request, parents before children. A regular file whose
// stamp is the one in prev is sent unchanged, without reading it. Errors
// name the bound a volume is over (ErrInvalidArgument) or the source that
// is missing (ErrNotFound).
func walkVolume(source string, prev map[string]stamp) (*walked, error) {
	root, err := filepath.EvalSymlinks(source)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("volume source %s: %w", source, errdefs.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("volume source %s: %w", source, err)
	}
	w := &walked{stamps: map[string]stamp{}}
	var data int64
	add := func(rel, full string, fi fs.FileInfo) error {
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("volume source %s: %s: no stat", source, full)
		}
		s := stamp{mode: st.Mode & 0o7777, uid: st.Uid, gid: st.Gid, size: st.Size,
			mtime: st.Mtim.Nano(), ctime: st.Ctim.Nano(), ino: st.Ino, dev: st.Dev}
		e := &api.FileEntry{Path: rel, Mode: s.mode, Uid: s.uid, Gid: s.gid}
		switch {
		case fi.IsDir():
			s.typ, e.Type = api.FileEntry_DIRECTORY, api.FileEntry_DIRECTORY
			s.size, s.mtime, s.ctime = 0, 0, 0 // a directory's own times change with what it holds, which is compared anyway
		case fi.Mode().IsRegular():
			s.typ, e.Type = api.FileEntry_REGULAR, api.FileEntry_REGULAR
			if p, ok := prev[rel]; ok && p == s {
				e.Unchanged = true
				break
			}
			if data+s.size > maxVolumeBytes {
				return fmt.Errorf("volume source %s holds more than %d bytes, the most a VM volume may (copied over the agent): %w", source, maxVolumeBytes, errdefs.ErrInvalidArgument)
			}
			b, err := readBounded(full, maxVolumeBytes-data)
			if err != nil {
				return fmt.Errorf("volume source %s: %w", source, err)
			}
			e.Data = b
			data += int64(len(b))
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(full)
			if err != nil {
				return fmt.Errorf("volume source %s: %w", source, err)
			}
			if !linkInside(rel, target) {
				w.skipped = append(w.skipped, rel)
				return nil
			}
			s.typ, e.Type, e.LinkTarget, s.target = api.FileEntry_SYMLINK, api.FileEntry_SYMLINK, target, target
			s.mode, e.Mode, s.size, s.mtime, s.ctime = 0, 0, 0, 0, 0
		default:
			if rel == "" {
				return fmt.Errorf("volume source %s is a %v, neither a directory nor a regular file: it cannot reach a VM: %w", source, fi.Mode().Type(), errdefs.ErrInvalidArgument)
			}
			w.skipped = append(w.skipped, rel)
			return nil
		}
		if len(w.entries) >= maxVolumeEntries {
			return fmt.Errorf("volume source %s holds more than %d files, the most a VM volume may: %w", source, maxVolumeEntries, errdefs.ErrInvalidArgument)
		}
		if len(rel) > maxVolumePath {
			return fmt.Errorf("volume source %s: a path of %d bytes, over %d: %w", source, len(rel), maxVolumePath, errdefs.ErrInvalidArgument)
		}
		w.entries = append(w.entries, e)
		w.stamps[rel] = s
		return nil
	}
	fi, err := os.Lstat(root)
	if err != nil {
		return nil, fmt.Errorf("volume source %s: %w", source, err)
	}
	if !fi.IsDir() {
		return w, add("", root, fi)
	}
	err = filepath.WalkDir(root, func(full string, d fs.DirEntry, err error) error {
		if err != nil {
			if full != root && errors.Is(err, fs.ErrNotExist) {
				return nil // gone since its directory was read
			}
			return fmt.Errorf("volume source %s: %w", source, err)
		}
		rel, err := filepath.Rel(root, full)
		if err != nil {
			return err
		}
		if rel == "." {
			rel = ""
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) && rel != "" {
			return nil
		}
		if err != nil {
			return fmt.Errorf("volume source %s: %w", source, err)
		}
		return add(filepath.ToSlash(rel), full, fi)
	})
	if err != nil {
		return nil, err
	}
	return w, nil
}

// readBounded reads a regular file of at most limit bytes.
func readBounded(p string, limit int64) ([]byte, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s grew past the %d bytes a VM volume may hold: %w", p, maxVolumeBytes, errdefs.ErrInvalidArgument)
	}
	return b, nil
}

// syncTo sends w to the agent as volume id, complete; a guest that lost a
// file sent unchanged gets the whole tree again.
func (s *sandbox) syncTo(ctx context.Context, id, source string, w *walked) (string, *walked, error) {
	p, err := s.cl.SyncVolume(ctx, id, w.entries, true)
	if errdefs.IsFailedPrecondition(err) && slices.ContainsFunc(w.entries, func(e *api.FileEntry) bool { return e.Unchanged }) {
		if w, err = walkVolume(source, nil); err != nil {
			return "", nil, err
		}
		p, err = s.cl.SyncVolume(ctx, id, w.entries, true)
	}
	if err != nil {
		return "", nil, s.callErr(err)
	}
	return p, w, nil
}
