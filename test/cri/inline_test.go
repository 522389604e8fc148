package cri

import (
	"path/filepath"
	"testing"

	"github.com/huskrt/husk/runtime/persist"
	"github.com/huskrt/husk/test/devenv"
)

// TestInlineConfig: a runtime handler whose husk configuration is written
// inline in containerd's config (no ConfigPath: the CRI passes the options
// table as ConfigBody) runs its pods with that configuration — here, its
// own state directory — and the pod leaves nothing there.
func TestInlineConfig(t *testing.T) {
	p := runPod(t, devenv.InlineHandler, podOpts{})
	p.start(t, "inline", "sleep", "1000")
	dir := persist.Dir(devenv.InlineStateDir(bench.Dir), devenv.CRINamespace, p.ID)
	if !exists(filepath.Join(dir, "state.json")) {
		t.Errorf("no sandbox record in %s, the inline configuration's state_dir: the shim did not use ConfigBody", dir)
	}
	p.remove(t)
	if exists(dir) {
		t.Errorf("husk's sandbox state %s left", dir)
	}
}
