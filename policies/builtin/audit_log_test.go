package builtin

import (
	"log/slog"
	"testing"

	"github.com/huskrt/husk/policies/internal/moduletest"
)

const auditLog = "../audit-log"

func TestAuditLog(t *testing.T) {
	p := moduletest.MustLoad(t, auditLog, `{"level":"warn"}`)
	d := p.Decide(t, "process.exec", `{"version":1,"sandbox":{"id":"p","namespace":"default"},"container":{"id":"c","image":null},"exec_id":"e1","process":{}}`)
	lines := p.Logs()
	if !d.Allow || d.Patch != nil || len(lines) != 1 || lines[0] != (moduletest.Line{Level: slog.LevelWarn, Msg: "audit process.exec sandbox=p namespace=default container=c exec=e1"}) {
		t.Errorf("decision %+v, log %q", d, lines)
	}
	p.Decide(t, "container.create", `{"version":1,"sandbox":{"id":"p","namespace":""},"container":{"id":"c\u00e9","image":"docker.io/x:1"}}`)
	if lines := p.Logs(); len(lines) != 1 || lines[0].Msg != "audit container.create sandbox=p container=cé image=docker.io/x:1" {
		t.Errorf("log %q", lines)
	}
	def := moduletest.MustLoad(t, auditLog, "")
	def.Decide(t, "sandbox.delete", `{"version":1,"sandbox":{"id":"p"}}`)
	if lines := def.Logs(); len(lines) != 1 || lines[0] != (moduletest.Line{Level: slog.LevelInfo, Msg: "audit sandbox.delete sandbox=p"}) {
		t.Errorf("default level: log %q", lines)
	}
	for cfg, msg := range map[string]string{
		`{"level":"loud"}`: "level: want debug, info, warn or error",
		`{"level":1}`:      "level: want debug, info, warn or error",
		`{"lvl":"info"}`:   "unknown key lvl (want level)",
	} {
		if _, err := moduletest.Load(t, auditLog, cfg); !contains(err, msg) {
			t.Errorf("Load with %s = %v, want an error with %q", cfg, err, msg)
		}
	}
}
