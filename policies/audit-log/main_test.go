package main

import (
	"testing"

	"github.com/huskrt/husk/policies/sdk"
)

func TestDecide(t *testing.T) {
	var lines []string
	sdk.LogFunc = func(l sdk.Level, msg string) { lines = append(lines, msg) }
	defer func() { sdk.LogFunc = nil }()
	if err := sdk.Configure([]byte(`{"level":"warn"}`)); err != nil || level != sdk.LevelWarn {
		t.Fatalf("Configure: %v, level %v", err, level)
	}
	d := decide(sdk.NewEvent("process.exec", []byte(`{"version":1,"sandbox":{"id":"p","namespace":"default"},"container":{"id":"c"},"exec_id":"e1","process":{}}`)))
	if !d.Allowed() || len(lines) != 1 || lines[0] != "audit process.exec sandbox=p namespace=default container=c exec=e1" {
		t.Errorf("decision %s, log %q", d.JSON(), lines)
	}
	if err := sdk.Configure([]byte(`{"level":"loud"}`)); err == nil {
		t.Error("bad level accepted")
	}
}
