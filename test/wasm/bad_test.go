package wasm

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/huskrt/husk/runtime/wasm"
)

// TestBadModules (R4): what cannot run fails at create with an error that
// says why, through ctr; nothing is left behind and the next container
// runs.
func TestBadModules(t *testing.T) {
	wasmAnn := []string{"--annotation", "io.husk.handler=wasm"}
	tests := []struct {
		name  string
		flags []string
		args  []string
		want  string
	}{
		{"not a Wasm file", wasmAnn, []string{"/bin/notwasm"}, `/bin/notwasm is not a Wasm module (it starts with "#!/b"`},
		{"crun's wasm handler and a native file", []string{"--annotation", "run.oci.handler=wasm"}, []string{"/bin/echo", "hi"}, "/bin/echo is not a Wasm module"},
		{"corrupt module", wasmAnn, []string{"/bin/corrupt.wasm"}, "module /bin/corrupt.wasm: section 1: truncated"},
		{"import we do not provide", wasmAnn, []string{"/bin/badimport.wasm"},
			"module /bin/badimport.wasm imports function env.husk_missing_function, which husk does not provide"},
		{"missing module", wasmAnn, []string{"/bin/nope.wasm"}, "/bin/nope.wasm: not found in the container"},
		{"unknown crun handler", []string{"--annotation", "run.oci.handler=krun"}, []string{"/bin/hello.wasm"}, `run.oci.handler="krun": husk supports wasm and wasm-smart`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ctrRun(t, "", tt.flags, tt.args...)
			if r.code == 0 || !strings.Contains(r.stderr, tt.want) {
				t.Fatalf("exit %d, stderr %q; want a failure saying %q", r.code, r.stderr, tt.want)
			}
		})
	}
	// Nothing of the failed containers is left in the cache's views.
	views := filepath.Join(wasm.DefaultCacheDir, "containers", bench.Namespace)
	ents, _ := os.ReadDir(views)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "testbadmodules") {
			t.Errorf("cache view %s left behind", filepath.Join(views, e.Name()))
		}
	}
	if r := ctrRun(t, "", nil, "/bin/hello.wasm"); r.code != 0 || r.stdout != "hello from wasm\n" {
		t.Fatalf("a good module after the bad ones: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

// TestSelection: which handler runs what, by annotation and by args[0]
// (runtime/select.go), seen from outside.
func TestSelection(t *testing.T) {
	tests := []struct {
		name   string
		flags  []string
		args   []string
		stdout string
		stderr string // a substring, when the run must fail
	}{
		{"native program in a linux sandbox runs natively", nil, []string{"echo", "native"}, "native\n", ""},
		{"Wasm module in a linux sandbox runs as Wasm", nil, []string{"hello.wasm"}, "hello from wasm\n", ""},
		{"wasm-smart runs a native program natively", []string{"--annotation", "run.oci.handler=wasm-smart"}, []string{"echo", "smart"}, "smart\n", ""},
		{"wasm-smart runs a module as Wasm", []string{"--annotation", "run.oci.handler=wasm-smart"}, []string{"hello.wasm"}, "hello from wasm\n", ""},
		{"compat variant", []string{"--annotation", "module.wasm.image/variant=compat"}, []string{"hello.wasm"}, "hello from wasm\n", ""},
		{"compat-smart variant, native", []string{"--annotation", "module.wasm.image/variant=compat-smart"}, []string{"echo", "compat"}, "compat\n", ""},
		{"io.husk.handler=linux runs even a module natively", []string{"--annotation", "io.husk.handler=linux"}, []string{"hello.wasm"}, "", "exec format error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ctrRun(t, "", tt.flags, tt.args...)
			if tt.stderr != "" {
				if r.code == 0 || !strings.Contains(r.stderr, tt.stderr) {
					t.Fatalf("exit %d, stderr %q; want a failure saying %q", r.code, r.stderr, tt.stderr)
				}
				return
			}
			if r.code != 0 || r.stdout != tt.stdout {
				t.Fatalf("exit %d, stdout %q, stderr %q; want 0 and %q", r.code, r.stdout, r.stderr, tt.stdout)
			}
		})
	}
}
