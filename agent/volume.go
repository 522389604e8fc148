package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"

	"github.com/huskrt/husk/agent/api"
)

// Bounds of a SyncVolume request (see agent.proto). ttrpc bounds the
// whole message at 4 MiB; these give a clear refusal below that.
const (
	maxVolumeID      = 64
	maxVolumeEntries = 16384
	maxVolumeData    = 3 << 20
	maxVolumePath    = 4096
	// guestVolumeDir holds the volumes in a guest (on the guest's /run,
	// a tmpfs: in the VM's memory).
	guestVolumeDir = "/run/husk/volumes"
	// syncTemp starts the names of the files and symlinks written beside
	// their final name and renamed over it.
	syncTemp = ".husk-sync-"
)

// resolveInside resolves a path below a directory fd without following
// any symlink, magic links included, nor leaving the directory.
const resolveInside = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV

// SyncVolume brings the guest copy of a host volume to the tree the host
// lists, in place (see agent.proto), and says where the copy is.
func (s *Service) SyncVolume(ctx context.Context, r *api.SyncVolumeRequest) (*api.SyncVolumeResponse, error) {
	if err := checkSyncVolume(r); err != nil {
		return nil, rpcErr(err)
	}
	s.volMu.Lock()
	defer s.volMu.Unlock()
	p, err := syncVolume(s.opts.VolumeDir, r)
	if err != nil {
		return nil, rpcErr(fmt.Errorf("volume %s: %w", r.VolumeId, err))
	}
	return &api.SyncVolumeResponse{Path: p}, nil
}

// checkVolumeID accepts 1 to maxVolumeID bytes of [A-Za-z0-9_.-], but
// not "." or "..".
func checkVolumeID(id string) error {
	if id == "" || len(id) > maxVolumeID || id == "." || id == ".." {
		return fmt.Errorf("volume id %q: want 1 to %d characters, not . or ..: %w", id, maxVolumeID, errdefs.ErrInvalidArgument)
	}
	for _, c := range id {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return fmt.Errorf("volume id %q: %q is not allowed: %w", id, c, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

// checkEntryPath accepts a clean relative path: no empty, "." or ".."
// element, no leading or trailing '/', no NUL.
func checkEntryPath(p string) error {
	if p == "" || len(p) > maxVolumePath || strings.IndexByte(p, 0) >= 0 {
		return fmt.Errorf("entry path %q: want 1 to %d bytes without NUL: %w", p, maxVolumePath, errdefs.ErrInvalidArgument)
	}
	for _, el := range strings.Split(p, "/") {
		if el == "" || el == "." || el == ".." {
			return fmt.Errorf("entry path %q: not a clean relative path (empty, . or .. element, or absolute): %w", p, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

// checkLinkTarget accepts a relative target that stays inside the volume
// once joined to the link's directory, by its words (the agent never
// follows a link itself, whatever its target).
func checkLinkTarget(link, target string) error {
	if target == "" || len(target) > maxVolumePath || strings.IndexByte(target, 0) >= 0 {
		return fmt.Errorf("symlink %q: target %q: want 1 to %d bytes without NUL: %w", link, target, maxVolumePath, errdefs.ErrInvalidArgument)
	}
	if path.IsAbs(target) {
		return fmt.Errorf("symlink %q: target %q is absolute: %w", link, target, errdefs.ErrInvalidArgument)
	}
	if j := path.Join(path.Dir(link), target); j == ".." || strings.HasPrefix(j, "../") {
		return fmt.Errorf("symlink %q: target %q leads out of the volume: %w", link, target, errdefs.ErrInvalidArgument)
	}
	return nil
}

// parentOf is the path of p's directory, "" for the root's children.
func parentOf(p string) string {
	if d := path.Dir(p); d != "." {
		return d
	}
	return ""
}

// checkSyncVolume checks a whole request before anything is written.
func checkSyncVolume(r *api.SyncVolumeRequest) error {
	if err := checkVolumeID(r.VolumeId); err != nil {
		return err
	}
	if len(r.Entries) == 0 {
		return fmt.Errorf("volume %s: no entries (the first is the root): %w", r.VolumeId, errdefs.ErrInvalidArgument)
	}
	if len(r.Entries) > maxVolumeEntries {
		return fmt.Errorf("volume %s: %d entries, at most %d: %w", r.VolumeId, len(r.Entries), maxVolumeEntries, errdefs.ErrInvalidArgument)
	}
	seen := make(map[string]api.FileEntry_Type, len(r.Entries))
	data := 0
	for i, e := range r.Entries {
		bad := func(format string, args ...any) error {
			return fmt.Errorf("volume %s: entry %d (%q): %s: %w", r.VolumeId, i, e.Path, fmt.Sprintf(format, args...), errdefs.ErrInvalidArgument)
		}
		if i == 0 {
			if e.Path != "" {
				return bad("the first entry must be the root (path \"\")")
			}
			if e.Type != api.FileEntry_DIRECTORY && e.Type != api.FileEntry_REGULAR {
				return bad("the root must be a directory or a regular file, not %v", e.Type)
			}
		} else {
			if err := checkEntryPath(e.Path); err != nil {
				return fmt.Errorf("volume %s: entry %d: %w", r.VolumeId, i, err)
			}
			if _, dup := seen[e.Path]; dup {
				return bad("listed twice")
			}
			if seen[parentOf(e.Path)] != api.FileEntry_DIRECTORY {
				return bad("its parent is not a directory listed before it")
			}
		}
		if e.Mode > 0o7777 {
			return bad("mode %#o has more than permission bits", e.Mode)
		}
		switch e.Type {
		case api.FileEntry_REGULAR:
			if e.Unchanged && len(e.Data) > 0 {
				return bad("unchanged, yet with data")
			}
			data += len(e.Data)
		case api.FileEntry_DIRECTORY, api.FileEntry_SYMLINK:
			if len(e.Data) > 0 || e.Unchanged {
				return bad("a %v has no data", e.Type)
			}
		default:
			return bad("type %v", e.Type)
		}
		if e.Type == api.FileEntry_SYMLINK {
			if err := checkLinkTarget(e.Path, e.LinkTarget); err != nil {
				return fmt.Errorf("volume %s: entry %d: %w", r.VolumeId, i, err)
			}
		} else if e.LinkTarget != "" {
			return bad("a %v has no link target", e.Type)
		}
		seen[e.Path] = e.Type
	}
	if data > maxVolumeData {
		return fmt.Errorf("volume %s: %d bytes of file data, at most %d in one request: %w", r.VolumeId, data, maxVolumeData, errdefs.ErrInvalidArgument)
	}
	return nil
}

// entryType is what a stat says a file is, in the protocol's words.
func entryType(st *unix.Stat_t) api.FileEntry_Type {
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return api.FileEntry_DIRECTORY
	case unix.S_IFREG:
		return api.FileEntry_REGULAR
	case unix.S_IFLNK:
		return api.FileEntry_SYMLINK
	}
	return api.FileEntry_TYPE_UNSPECIFIED
}

// lstatAt stats name in dir without following it; ok is false when there
// is no such name.
func lstatAt(dir int, name string) (st unix.Stat_t, ok bool, err error) {
	err = unix.Fstatat(dir, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return st, false, nil
	}
	return st, err == nil, err
}

// syncVolume applies a checked request under dir, the volumes' directory.
func syncVolume(dir string, r *api.SyncVolumeRequest) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	dfd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", fmt.Errorf("opening %s: %w", dir, err)
	}
	defer unix.Close(dfd)
	root := r.Entries[0]
	st, exists, err := lstatAt(dfd, r.VolumeId)
	if err != nil {
		return "", err
	}
	if exists && entryType(&st) != root.Type {
		return "", fmt.Errorf("the guest copy is a %v, the host's root a %v: %w", entryType(&st), root.Type, errdefs.ErrFailedPrecondition)
	}
	p := filepath.Join(dir, r.VolumeId)
	if root.Type == api.FileEntry_REGULAR {
		return p, writeRootFile(dfd, r.VolumeId, root, exists)
	}
	if !exists {
		if err := unix.Mkdirat(dfd, r.VolumeId, 0o700); err != nil {
			return "", fmt.Errorf("creating the guest copy: %w", err)
		}
	}
	rfd, err := unix.Openat(dfd, r.VolumeId, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", err
	}
	defer unix.Close(rfd)
	if err := setAttrs(rfd, root); err != nil {
		return "", err
	}
	// Directories and files first, then the symlinks that point at them:
	// a ..data swap happens once the new data is all in place.
	for _, e := range r.Entries[1:] {
		var err error
		switch e.Type {
		case api.FileEntry_DIRECTORY:
			err = inParent(rfd, e.Path, func(pfd int, name string) error { return syncDir(pfd, name, e) })
		case api.FileEntry_REGULAR:
			err = inParent(rfd, e.Path, func(pfd int, name string) error { return syncFile(pfd, name, e) })
		}
		if err != nil {
			return "", fmt.Errorf("%s: %w", e.Path, err)
		}
	}
	for _, e := range r.Entries[1:] {
		if e.Type == api.FileEntry_SYMLINK {
			if err := inParent(rfd, e.Path, func(pfd int, name string) error { return syncLink(pfd, name, e) }); err != nil {
				return "", fmt.Errorf("%s: %w", e.Path, err)
			}
		}
	}
	if r.Complete {
		listed := make(map[string]api.FileEntry_Type, len(r.Entries))
		for _, e := range r.Entries {
			listed[e.Path] = e.Type
		}
		if err := prune(rfd, "", listed); err != nil {
			return "", err
		}
	}
	return p, nil
}

// inParent calls fn with p's directory, opened below root without
// following a symlink, and p's last element.
func inParent(root int, p string, fn func(pfd int, name string) error) error {
	parent, name := parentOf(p), path.Base(p)
	if parent == "" {
		return fn(root, name)
	}
	pfd, err := unix.Openat2(root, parent, &unix.OpenHow{
		Flags:   unix.O_DIRECTORY | unix.O_RDONLY | unix.O_CLOEXEC,
		Resolve: resolveInside,
	})
	if err != nil {
		return fmt.Errorf("opening its directory without following symlinks: %w", err)
	}
	defer unix.Close(pfd)
	return fn(pfd, name)
}

// setAttrs gives an open file the entry's owner, then its mode (a chown
// clears set-id bits).
func setAttrs(fd int, e *api.FileEntry) error {
	if err := unix.Fchown(fd, int(e.Uid), int(e.Gid)); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	if err := unix.Fchmod(fd, e.Mode&0o7777); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	return nil
}

// syncDir makes name in pfd a directory with the entry's attributes.
func syncDir(pfd int, name string, e *api.FileEntry) error {
	st, exists, err := lstatAt(pfd, name)
	if err != nil {
		return err
	}
	if exists && entryType(&st) != api.FileEntry_DIRECTORY {
		if err := removeAt(pfd, name); err != nil {
			return err
		}
		exists = false
	}
	if !exists {
		if err := unix.Mkdirat(pfd, name, 0o700); err != nil {
			return err
		}
	}
	fd, err := unix.Openat(pfd, name, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return setAttrs(fd, e)
}

// openRegular opens an existing regular file without following a
// symlink or blocking on a FIFO, and checks what it opened.
func openRegular(pfd int, name string) (int, error) {
	fd, err := unix.Openat(pfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ELOOP) {
		return -1, fmt.Errorf("no regular file to keep (sent unchanged): %w", errdefs.ErrFailedPrecondition)
	}
	if err != nil {
		return -1, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || entryType(&st) != api.FileEntry_REGULAR {
		unix.Close(fd)
		return -1, fmt.Errorf("not a regular file to keep (sent unchanged): %w", errdefs.ErrFailedPrecondition)
	}
	return fd, nil
}

// syncFile writes a regular file beside name and renames it over name,
// or only sets the attributes of an unchanged one.
func syncFile(pfd int, name string, e *api.FileEntry) error {
	if e.Unchanged {
		fd, err := openRegular(pfd, name)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return setAttrs(fd, e)
	}
	return replaceAt(pfd, name, func(tmp string) error {
		fd, err := unix.Openat(pfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		if err := writeAll(fd, e.Data); err != nil {
			return err
		}
		return setAttrs(fd, e)
	})
}

// syncLink makes name a symlink to the entry's target: unchanged when it
// already is one, else created beside it and renamed over it.
func syncLink(pfd int, name string, e *api.FileEntry) error {
	st, exists, err := lstatAt(pfd, name)
	if err != nil {
		return err
	}
	if exists && entryType(&st) == api.FileEntry_SYMLINK {
		buf := make([]byte, maxVolumePath+1)
		if n, err := unix.Readlinkat(pfd, name, buf); err == nil && string(buf[:n]) == e.LinkTarget {
			return unix.Fchownat(pfd, name, int(e.Uid), int(e.Gid), unix.AT_SYMLINK_NOFOLLOW)
		}
	}
	return replaceAt(pfd, name, func(tmp string) error {
		if err := unix.Symlinkat(e.LinkTarget, pfd, tmp); err != nil {
			return err
		}
		return unix.Fchownat(pfd, tmp, int(e.Uid), int(e.Gid), unix.AT_SYMLINK_NOFOLLOW)
	})
}

// replaceAt has create make a temporary name in pfd, then renames it over
// name, removing a directory that stands in the way. The temporary name
// does not outlive a failure.
func replaceAt(pfd int, name string, create func(tmp string) error) error {
	var tmp string
	for range 8 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		tmp = syncTemp + hex.EncodeToString(b[:])
		if _, exists, err := lstatAt(pfd, tmp); err != nil {
			return err
		} else if !exists {
			break
		}
	}
	if err := create(tmp); err != nil {
		_ = unix.Unlinkat(pfd, tmp, 0)
		return err
	}
	err := unix.Renameat(pfd, tmp, pfd, name)
	if errors.Is(err, unix.EISDIR) || errors.Is(err, unix.ENOTEMPTY) || errors.Is(err, unix.EEXIST) || errors.Is(err, unix.ENOTDIR) {
		if err = removeAt(pfd, name); err == nil {
			err = unix.Renameat(pfd, tmp, pfd, name)
		}
	}
	if err != nil {
		_ = unix.Unlinkat(pfd, tmp, 0)
		return err
	}
	return nil
}

// writeRootFile writes a volume whose root is a file in place: a bind
// mount of it holds the inode, which a rename would leave behind.
func writeRootFile(dfd int, id string, e *api.FileEntry, exists bool) error {
	if e.Unchanged {
		if !exists {
			return fmt.Errorf("no guest copy to keep (sent unchanged): %w", errdefs.ErrFailedPrecondition)
		}
		fd, err := openRegular(dfd, id)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return setAttrs(fd, e)
	}
	fd, err := unix.Openat(dfd, id, unix.O_WRONLY|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if entryType(&st) != api.FileEntry_REGULAR {
		return fmt.Errorf("the guest copy is no regular file: %w", errdefs.ErrFailedPrecondition)
	}
	if err := writeAll(fd, e.Data); err != nil {
		return err
	}
	if err := unix.Ftruncate(fd, int64(len(e.Data))); err != nil {
		return err
	}
	return setAttrs(fd, e)
}

// writeAll writes b at the start of fd.
func writeAll(fd int, b []byte) error {
	for off := 0; off < len(b); {
		n, err := unix.Pwrite(fd, b[off:], int64(off))
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		off += n
	}
	return nil
}

// readNames lists a directory fd's names (without . and ..).
func readNames(fd int) ([]string, error) {
	dup, err := unix.Dup(fd)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(dup), "dir")
	defer f.Close()
	return f.Readdirnames(-1)
}

// prune removes from the directory fd (at rel in the volume) what listed
// does not name, and descends into the directories it does.
func prune(fd int, rel string, listed map[string]api.FileEntry_Type) error {
	names, err := readNames(fd)
	if err != nil {
		return err
	}
	for _, name := range names {
		p := path.Join(rel, name)
		t, ok := listed[p]
		if !ok {
			if err := removeAt(fd, name); err != nil {
				return fmt.Errorf("removing %s: %w", p, err)
			}
			continue
		}
		if t != api.FileEntry_DIRECTORY {
			continue
		}
		cfd, err := unix.Openat(fd, name, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		err = prune(cfd, p, listed)
		unix.Close(cfd)
		if err != nil {
			return err
		}
	}
	return nil
}

// removeAt removes name from the directory fd, a directory with what it
// holds, never following a symlink.
func removeAt(fd int, name string) error {
	err := unix.Unlinkat(fd, name, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if !errors.Is(err, unix.EISDIR) {
		return err
	}
	cfd, err := unix.Openat(fd, name, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	names, err := readNames(cfd)
	if err == nil {
		for _, n := range names {
			if err = removeAt(cfd, n); err != nil {
				break
			}
		}
	}
	unix.Close(cfd)
	if err != nil {
		return err
	}
	return unix.Unlinkat(fd, name, unix.AT_REMOVEDIR)
}
