package virt

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/huskrt/husk/internal/logging"
)

// podVolumes are the host sources a pod's containers bind-mount, each
// copied once into the VM and shared by every container that mounts it.
type podVolumes struct {
	mu       sync.Mutex
	byID     map[string]*volume // guarded by mu
	watching bool               // the resync loop runs; guarded by mu
}

// volume is a host source and its copy in the guest.
type volume struct {
	id, source string

	// users are the containers mounting it, true where writable; guarded
	// by podVolumes.mu.
	users map[string]bool
	// written says a container mounted it writable: from then on the
	// guest's copy is the volume (an emptyDir outlives the container that
	// wrote it) and the host's is never copied over it again; guarded by
	// podVolumes.mu.
	written bool

	mu      sync.Mutex       // serialises the volume's syncs
	guest   string           // the copy's path in the guest, "" before the first sync; guarded by mu
	stamps  map[string]stamp // what the guest's copy was made from; guarded by mu
	skipped int              // how many files the last walk skipped; guarded by mu
	lastErr string           // the last resync error logged; guarded by mu
}

// use records that container id mounts source, writable or not, and
// returns its volume.
func (pv *podVolumes) use(source, id string, writable bool) *volume {
	pv.mu.Lock()
	defer pv.mu.Unlock()
	if pv.byID == nil {
		pv.byID = map[string]*volume{}
	}
	vid := volumeID(source)
	v := pv.byID[vid]
	if v == nil {
		v = &volume{id: vid, source: filepath.Clean(source), users: map[string]bool{}}
		pv.byID[vid] = v
	}
	v.users[id] = v.users[id] || writable
	v.written = v.written || writable
	return v
}

// release forgets container id's mounts. The guest's copies stay until
// the VM ends: an emptyDir must outlive a container's restart, and an
// unused read-only copy is no longer synced.
func (pv *podVolumes) release(id string) {
	pv.mu.Lock()
	defer pv.mu.Unlock()
	for _, v := range pv.byID {
		delete(v.users, id)
	}
}

// frozen reports whether v is no longer synced from the host.
func (pv *podVolumes) frozen(v *volume) bool {
	pv.mu.Lock()
	defer pv.mu.Unlock()
	return v.written
}

// watched returns the volumes to resync: mounted, and only read-only.
func (pv *podVolumes) watched() []*volume {
	pv.mu.Lock()
	defer pv.mu.Unlock()
	var out []*volume
	for _, v := range pv.byID {
		if len(v.users) > 0 && !v.written {
			out = append(out, v)
		}
	}
	return out
}

// mountVolumes returns the container's mounts with each bind mount of a
// host path turned into a bind mount of that path's copy in the guest,
// synced first; options (ro, rbind, propagation) stay as they were. A
// bind at /dev/shm (the CRI's, of the sandbox's shm) becomes a bind of
// the guest's own /dev/shm, a tmpfs the pod's containers share. On error
// the container uses no volume.
func (s *sandbox) mountVolumes(ctx context.Context, id string, in []specs.Mount) (_ []specs.Mount, retErr error) {
	out := slices.Clone(in)
	defer func() {
		if retErr != nil {
			s.vols.release(id)
		}
	}()
	watch := false
	for i := range out {
		m := &out[i]
		if !isBind(m) {
			continue
		}
		if m.Destination == "/dev/shm" {
			m.Source = "/dev/shm"
			continue
		}
		if !filepath.IsAbs(m.Source) {
			return nil, fmt.Errorf("container %s: bind mount at %s: source %q is not an absolute host path: %w", id, m.Destination, m.Source, errdefs.ErrInvalidArgument)
		}
		writable := !readOnlyBind(m.Options)
		v := s.vols.use(m.Source, id, writable)
		p, err := s.syncVolume(ctx, v)
		if err != nil {
			return nil, fmt.Errorf("container %s: bind mount of %s at %s: %w", id, m.Source, m.Destination, err)
		}
		m.Source = p
		watch = watch || !writable
	}
	if watch {
		s.vols.mu.Lock()
		start := !s.vols.watching
		s.vols.watching = true
		s.vols.mu.Unlock()
		if start {
			go s.watchVolumes()
		}
	}
	return out, nil
}

// syncVolume brings v's guest copy up to date, unless a writable mount
// made the guest's copy the volume, and returns the copy's guest path.
func (s *sandbox) syncVolume(ctx context.Context, v *volume) (string, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.guest != "" && s.vols.frozen(v) {
		return v.guest, nil
	}
	return v.guest, s.syncLocked(ctx, v)
}

// syncLocked walks v's source and, when it changed since the guest's copy
// was made, sends it.
//
// Preconditions: v.mu is held.
func (s *sandbox) syncLocked(ctx context.Context, v *volume) error {
	w, err := walkVolume(v.source, v.stamps)
	if err != nil {
		return err
	}
	if v.guest != "" && sameTree(w.stamps, v.stamps) {
		return nil
	}
	p, w, err := s.syncTo(ctx, v.id, v.source, w)
	if err != nil {
		return err
	}
	if len(w.skipped) != v.skipped && len(w.skipped) > 0 {
		logging.L(ctx).Warn("volume files that cannot reach a VM were left out (sockets, devices, FIFOs, symlinks absolute or out of the volume)",
			"source", v.source, "count", len(w.skipped), "first", w.skipped[:min(len(w.skipped), 5)])
	}
	v.guest, v.stamps, v.skipped = p, w.stamps, len(w.skipped)
	return nil
}

// watchVolumes resyncs the pod's read-only volumes every resyncInterval
// until the sandbox ends.
func (s *sandbox) watchVolumes() {
	t := time.NewTicker(resyncInterval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		for _, v := range s.vols.watched() {
			s.resync(v)
		}
	}
}

// resync brings one read-only volume up to date, logging a failure once
// until it changes (the next tick tries again).
func (s *sandbox) resync(v *volume) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.guest == "" {
		return
	}
	if err := s.syncLocked(s.ctx, v); err != nil {
		if s.ctx.Err() == nil && err.Error() != v.lastErr {
			logging.L(s.ctx).Warn("resyncing a volume", "source", v.source, "error", err)
		}
		v.lastErr = err.Error()
		return
	}
	v.lastErr = ""
}

// readOnlyBind: a bind mount's options make it read-only ("ro", or "rro",
// recursively read-only: a volume's guest copy has no mounts beneath it,
// so the two are the same there). A read-only volume is resynced from the
// host; a writable one is the guest's from its first writer on.
func readOnlyBind(opts []string) bool {
	return slices.Contains(opts, "ro") || slices.Contains(opts, "rro")
}
