package config

import (
	"strings"
	"testing"
)

// TestDebugConsoleKey: [virt] debug_console is off by default, a bool, and
// only it turns the agent's console on: the kernel parameter is husk's.
func TestDebugConsoleKey(t *testing.T) {
	if Default().Virt.DebugConsole {
		t.Fatal("the debug console is on by default")
	}
	c, err := LoadInline("on", []byte("[virt]\ndebug_console = true\n"))
	if err != nil || !c.Virt.DebugConsole {
		t.Fatalf("debug_console = true: %v, on %v", err, c != nil && c.Virt.DebugConsole)
	}
	for name, body := range map[string]string{
		"a string":       "[virt]\ndebug_console = \"yes\"\n",
		"a number":       "[virt]\ndebug_console = 1\n",
		"kernel param":   "[virt]\nkernel_params = [\"husk.debug_console=1\"]\n",
		"kernel param 0": "[virt]\nkernel_params = [\"husk.debug_console=0\"]\n",
	} {
		_, err := LoadInline(name, []byte(body))
		if err == nil {
			t.Errorf("%s: loads", name)
			continue
		}
		if strings.Contains(name, "kernel") && !strings.Contains(err.Error(), "husk.debug_console") {
			t.Errorf("%s: %v does not name the parameter", name, err)
		}
	}
}
