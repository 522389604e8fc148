package cri

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/huskrt/husk/test/devenv"
)

// handlerFeatures is what `crictl info` says of a runtime handler.
type handlerFeatures struct {
	RecursiveReadOnlyMounts bool `json:"recursive_read_only_mounts"`
	UserNamespaces          bool `json:"user_namespaces"`
}

// runtimeHandlers returns the CRI's runtime handlers by name, as `crictl
// info` lists them (the features the CRI read from each runtime's -info;
// nil when it could not read them).
func runtimeHandlers(t *testing.T) map[string]*handlerFeatures {
	t.Helper()
	var info struct {
		RuntimeHandlers []struct {
			Name     string           `json:"name"`
			Features *handlerFeatures `json:"features"`
		} `json:"runtimeHandlers"`
	}
	out := crictl(t, "info", "-o", "json")
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("crictl info: %v\n%s", err, out)
	}
	hs := map[string]*handlerFeatures{}
	for _, h := range info.RuntimeHandlers {
		hs[h.Name] = h.Features
	}
	return hs
}

// TestHandlerFeatures checks what the CRI learnt of each handler from its
// shim's -info. husk's Linux handler without an options table says what
// runc says on this machine, recursive read-only mounts and user namespaces
// included. With an options table (ConfigPath, or inline) it says the same
// of recursive read-only mounts but denies user namespaces: the CRI cannot
// start a user-namespaced container on such an entry (shim/features.go).
// The VM handler says recursive read-only mounts, not user namespaces.
func TestHandlerFeatures(t *testing.T) {
	needBench(t)
	hs := runtimeHandlers(t)
	runcF := hs["runc"]
	if runcF == nil {
		t.Fatalf("no features of the runc handler in crictl info: %v", hs)
	}
	t.Logf("runc: %+v", *runcF)
	if !runcF.RecursiveReadOnlyMounts || !runcF.UserNamespaces {
		t.Errorf("runc's handler lacks recursive read-only mounts or user namespaces on this machine: the comparison proves little")
	}
	withTable := *runcF
	withTable.UserNamespaces = false
	for h, want := range map[string]handlerFeatures{
		devenv.PlainHandler:  *runcF,
		"husk":               withTable,
		devenv.InlineHandler: withTable,
	} {
		f := hs[h]
		switch {
		case f == nil:
			t.Errorf("no features of the %s handler in crictl info (the CRI could not read them from -info)", h)
		case *f != want:
			t.Errorf("%s: %+v, want %+v (runc: %+v)", h, *f, want, *runcF)
		}
	}
	if f, ok := hs[devenv.VirtHandler]; ok {
		if f == nil {
			t.Errorf("no features of the %s handler in crictl info (the CRI could not read them from -info)", devenv.VirtHandler)
		} else if !f.RecursiveReadOnlyMounts || f.UserNamespaces {
			t.Errorf("%s (VM pods) reports %+v: want recursive read-only mounts (TestVirtPodRecursiveReadOnlyMount) and no user namespaces", devenv.VirtHandler, *f)
		}
	}
}

// rroProbe writes at the top of the mount at /mnt and inside the mount
// nested under it, and says which writes the kernel refused.
const rroProbe = `
if touch /mnt/top 2>/dev/null; then echo top-writable; else echo top-readonly; fi
if touch /mnt/nested/inner 2>/dev/null; then echo nested-writable; else echo nested-readonly; fi
`

// TestRecursiveReadOnlyMount mounts a host directory with a tmpfs nested in
// it into a container as kubelet does for a recursiveReadOnly volume
// (readonly, recursive_read_only, private propagation): neither it nor the
// tmpfs under it can be written. A plain readonly mount is the control: its
// nested tmpfs stays writable.
func TestRecursiveReadOnlyMount(t *testing.T) {
	src := t.TempDir()
	nested := filepath.Join(src, "nested")
	if err := os.Mkdir(nested, 0o755); err != nil {
		t.Fatal(err)
	}
	forEachHandler(t, func(t *testing.T, handler string) {
		// Mounted per run: each container's rbind takes a copy of the tree.
		if err := unix.Mount("tmpfs", nested, "tmpfs", 0, "size=1m"); err != nil {
			t.Fatalf("mounting the nested tmpfs: %v", err)
		}
		t.Cleanup(func() { _ = unix.Unmount(nested, unix.MNT_DETACH) })
		p := runPod(t, handler, podOpts{})
		for _, tc := range []struct {
			name string
			rro  bool
			want string
		}{
			{"rro", true, "top-readonly\nnested-readonly\n"},
			{"ro", false, "top-readonly\nnested-writable\n"},
		} {
			id := p.startWith(t, tc.name, map[string]any{
				"mounts": []map[string]any{{
					"container_path":      "/mnt",
					"host_path":           src,
					"readonly":            true,
					"recursive_read_only": tc.rro,
					"propagation":         0, // PROPAGATION_PRIVATE
				}},
			}, "sleep", "3600")
			if got := execSync(t, id, "sh", "-c", rroProbe); got != tc.want {
				t.Errorf("%s mount: got\n%s\nwant\n%s", tc.name, got, tc.want)
			}
		}
	})
}

// startWith is start with extra fields of the container's configuration.
func (p *pod) startWith(t *testing.T, name string, extra map[string]any, cmd ...string) string {
	t.Helper()
	cfg := map[string]any{
		"metadata": map[string]any{"name": name},
		"image":    map[string]any{"image": devenv.BusyboxRef},
		"command":  cmd,
		"log_path": name + ".log",
		"linux": map[string]any{
			"security_context": map[string]any{"namespace_options": p.nsOptions},
		},
	}
	for k, v := range extra {
		cfg[k] = v
	}
	path := writeJSON(t, filepath.Join(p.dir, name+".json"), cfg)
	id := strings.TrimSpace(crictl(t, "create", "--no-pull", p.ID, path, p.config))
	p.containers = append(p.containers, id)
	crictl(t, "start", id)
	return id
}

// usernsHost is the first host ID of the user-namespaced pods' mapping
// (kubelet gives each pod a range of 65536 at a multiple of 65536).
const usernsHost = 65536 * 23

// usernsProbe prints what a container sees of its user namespace, and
// whether root in it can write its root filesystem and its standard
// output through /dev/stdout (which an image that links its logs there
// does).
const usernsProbe = `
id -u; id -g
cat /proc/self/uid_map /proc/self/gid_map | tr -s ' '
if touch /rootfs-write 2>/dev/null; then echo rootfs-writable; else echo rootfs-readonly; fi
stat -c '%u:%g' /bin/busybox
if echo via-dev-stdout >/dev/stdout 2>/dev/null; then :; else echo dev-stdout-refused; fi
`

// TestUserNamespacedPod runs a pod with hostUsers: false (userns_options
// in mode POD with a 65536-long mapping, as kubelet sends): its container
// is root in a user namespace mapped to the pod's range, its image's files
// are its root's (idmapped), it can reopen its stdout, an idmapped volume
// is its root's, and on the host it runs as the range's first ID; under husk (the entry without an options
// table, the kind the CRI can start such containers on) as under runc.
func TestUserNamespacedPod(t *testing.T) {
	needBench(t)
	for _, handler := range []string{"runc", devenv.PlainHandler} {
		t.Run(handler, func(t *testing.T) { userNamespacedPod(t, handler) })
	}
}

func userNamespacedPod(t *testing.T, handler string) {
	if f := runtimeHandlers(t)[handler]; f == nil || !f.UserNamespaces {
		t.Skipf("the CRI says handler %s has no user namespace support on this machine (crictl info)", handler)
	}
	// A host directory owned by the host's root, mounted idmapped (as
	// kubelet mounts a user-namespaced pod's volumes): the pod's root owns
	// it, and what it writes there is the host root's.
	data := t.TempDir()
	if err := os.WriteFile(filepath.Join(data, "f"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := runUsernsPod(t, handler)
	mapping := []map[string]any{{"container_id": 0, "host_id": usernsHost, "length": 65536}}
	id := p.startWith(t, "probe", map[string]any{
		"mounts": []map[string]any{{
			"container_path": "/data", "host_path": data,
			"uidMappings": mapping, "gidMappings": mapping,
		}},
	}, "sh", "-c", usernsProbe+volumeProbe+"sleep 3600")
	want := "0\n0\n 0 " + strconv.Itoa(usernsHost) + " 65536\n 0 " + strconv.Itoa(usernsHost) + " 65536\n" +
		"rootfs-writable\n0:0\nvia-dev-stdout\n0:0\ndata-written\n"
	if got := waitLog(t, id, "data-written", "data-refused"); got != want {
		t.Errorf("in the container:\n%s\nwant\n%s", got, want)
	}
	checkHostUID(t, id)
	fi, err := os.Stat(filepath.Join(data, "new"))
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 0 || st.Gid != 0 {
		t.Errorf("a file the pod's root wrote to its idmapped volume is %d:%d on the host, want 0:0", st.Uid, st.Gid)
	}
}

// volumeProbe says who owns the file f of the volume at /data and whether
// the container's root can write there.
const volumeProbe = `
stat -c '%u:%g' /data/f
if touch /data/new 2>/dev/null; then echo data-written; else echo data-refused; fi
`

// waitLog waits for container id's log (crictl logs) to show one of the
// markers and returns it.
func waitLog(t *testing.T, id string, markers ...string) string {
	t.Helper()
	var text string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		text = logOf(t, id)
		for _, m := range markers {
			if strings.Contains(text, m) {
				return text
			}
		}
	}
	t.Fatalf("container %.13s logged none of %v: %q", id, markers, text)
	return ""
}

// runUsernsPod runs a pod with handler whose userns_options ask for a user
// namespace of the pod (mode POD, 65536 IDs at usernsHost), as kubelet
// does for hostUsers: false, and arranges for its removal.
func runUsernsPod(t *testing.T, handler string) *pod {
	t.Helper()
	devenv.AllowTraverse(t, bench.Dir)
	p := newPod(t, handler, podOpts{})
	mapping := []map[string]any{{"container_id": 0, "host_id": usernsHost, "length": 65536}}
	p.nsOptions["userns_options"] = map[string]any{"mode": nsPod, "uids": mapping, "gids": mapping}
	var cfg map[string]any
	b, err := os.ReadFile(p.config)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["linux"].(map[string]any)["security_context"] = map[string]any{"namespace_options": p.nsOptions}
	writeJSON(t, p.config, cfg)
	t.Cleanup(func() { p.remove(t) })
	p.ID = strings.TrimSpace(crictl(t, "runp", "--runtime", handler, p.config))
	return p
}

// checkHostUID checks that container id's process runs, on the host, as
// the first ID of the user-namespaced pods' range.
func checkHostUID(t *testing.T, id string) {
	t.Helper()
	pid := inspectContainer(t, id).Info.Pid
	status, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		t.Fatal(err)
	}
	want := "Uid:\t" + strconv.Itoa(usernsHost) + "\t"
	if !strings.Contains(string(status), want) {
		t.Errorf("on the host, pid %d's status has no %q:\n%s", pid, want, status)
	}
}
