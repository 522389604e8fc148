package guestimage

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"
)

// MetaPackage is Debian's package that always depends on the current cloud
// kernel; Fetch unpacks the versioned package it depends on.
const MetaPackage = "linux-image-cloud-amd64"

// CurrentLink is the symlink in the cache that points at the newest
// unpacked kernel package (hack/nested-assets.sh keeps the same one).
const CurrentLink = "cloud-amd64"

// Fetch makes sure the kernel package MetaPackage depends on is unpacked in
// cacheDir/<package>_<version> and returns that directory. It downloads
// the .deb with apt-get and unpacks it with dpkg-deb: nothing is installed
// on the host. A package already unpacked is not fetched again. The layout
// is hack/nested-assets.sh's, so both share one cache.
func Fetch(ctx context.Context, cacheDir string) (string, error) {
	pkg, err := kernelPackage(ctx)
	if err != nil {
		return "", err
	}
	out, err := exec.CommandContext(ctx, "apt-cache", "policy", pkg).Output()
	if err != nil {
		return "", fmt.Errorf("apt-cache policy %s: %w", pkg, err)
	}
	version := parseCandidate(out)
	if version == "" {
		return "", fmt.Errorf("apt-cache policy %s: no candidate version: %w", pkg, errdefs.ErrNotFound)
	}
	dir := filepath.Join(cacheDir, pkg+"_"+version)
	if unpacked(dir) {
		return dir, linkCurrent(cacheDir, dir)
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", err
	}
	debDir, err := os.MkdirTemp("", "husk-kernel-deb-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(debDir)
	// As root, apt-get download drops to the _apt user to write into the
	// current directory: give it the directory, or apt warns and downloads
	// unsandboxed.
	if os.Geteuid() == 0 {
		if u, err := user.Lookup("_apt"); err == nil {
			if uid, err := strconv.Atoi(u.Uid); err == nil {
				if err := os.Chown(debDir, uid, -1); err != nil {
					return "", err
				}
			}
		}
	}
	dl := exec.CommandContext(ctx, "apt-get", "download", "-qq", pkg+"="+version)
	dl.Dir = debDir
	if out, err := dl.CombinedOutput(); err != nil {
		return "", fmt.Errorf("apt-get download %s=%s: %w: %s", pkg, version, err, bytes.TrimSpace(out))
	}
	debs, _ := filepath.Glob(filepath.Join(debDir, "*.deb"))
	if len(debs) != 1 {
		return "", fmt.Errorf("apt-get download %s=%s: want one .deb, found %d", pkg, version, len(debs))
	}
	// Unpack beside the final directory, then rename: a reader never sees
	// half a package.
	partial, err := os.MkdirTemp(cacheDir, ".partial-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(partial)
	if err := os.Chmod(partial, 0o755); err != nil {
		return "", err
	}
	if out, err := exec.CommandContext(ctx, "dpkg-deb", "-x", debs[0], partial).CombinedOutput(); err != nil {
		return "", fmt.Errorf("dpkg-deb -x %s: %w: %s", filepath.Base(debs[0]), err, bytes.TrimSpace(out))
	}
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	if err := os.Rename(partial, dir); err != nil {
		return "", err
	}
	return dir, linkCurrent(cacheDir, dir)
}

// kernelPackage returns the versioned kernel package MetaPackage depends
// on, updating apt's package lists once if apt does not know it.
func kernelPackage(ctx context.Context) (string, error) {
	query := func() string {
		out, _ := exec.CommandContext(ctx, "apt-cache", "depends", MetaPackage).Output()
		return parseDepends(out)
	}
	if pkg := query(); pkg != "" {
		return pkg, nil
	}
	if out, err := exec.CommandContext(ctx, "apt-get", "update", "-qq").CombinedOutput(); err != nil {
		return "", fmt.Errorf("apt-get update: %w: %s", err, bytes.TrimSpace(out))
	}
	if pkg := query(); pkg != "" {
		return pkg, nil
	}
	return "", fmt.Errorf("apt-cache depends %s: no linux-image-* dependency: %w", MetaPackage, errdefs.ErrNotFound)
}

// parseDepends returns the first "Depends: linux-image-..." of apt-cache
// depends' output.
func parseDepends(out []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "Depends:" && strings.HasPrefix(f[1], "linux-image-") {
			return f[1]
		}
	}
	return ""
}

// parseCandidate returns the "Candidate:" version of apt-cache policy's
// output, or "" if there is none.
func parseCandidate(out []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == "Candidate:" && f[1] != "(none)" {
			return f[1]
		}
	}
	return ""
}

// unpacked reports whether dir holds an unpacked kernel package.
func unpacked(dir string) bool {
	k, _ := filepath.Glob(filepath.Join(dir, "boot", "vmlinuz-*"))
	fi, err := os.Stat(filepath.Join(dir, "lib", "modules"))
	return len(k) > 0 && err == nil && fi.IsDir()
}

// linkCurrent points cacheDir/CurrentLink at dir, replacing it atomically.
func linkCurrent(cacheDir, dir string) error {
	tmp := filepath.Join(cacheDir, "."+CurrentLink+".tmp")
	os.Remove(tmp)
	if err := os.Symlink(filepath.Base(dir), tmp); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(cacheDir, CurrentLink))
}
