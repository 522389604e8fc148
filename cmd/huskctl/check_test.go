package main

import (
	"errors"
	"strings"
	"testing"
)

func TestReport(t *testing.T) {
	var b strings.Builder
	if !report(&b, "virt", []finding{{what: "KVM", note: "fine"}, {what: "mkfs.erofs", note: "/usr/bin/mkfs.erofs"}}) {
		t.Fatal("all fine, reported not ok")
	}
	if !strings.HasPrefix(b.String(), "virt: can run here\n") {
		t.Errorf("report %q", b.String())
	}
	b.Reset()
	if report(&b, "virt", []finding{{what: "KVM", err: errors.New("no /dev/kvm"), note: "load kvm"}, {what: "guest image"}}) {
		t.Fatal("a failure, reported ok")
	}
	if got := b.String(); !strings.Contains(got, "virt: cannot run here") || !strings.Contains(got, "FAIL KVM          no /dev/kvm (load kvm)") {
		t.Errorf("report %q", got)
	}
}

// TestReportOptional: a backend the configuration does not use is shown
// but does not stop the handler.
func TestReportOptional(t *testing.T) {
	var b strings.Builder
	fs := []finding{{what: "builtin VMM", err: errors.New("no /dev/kvm"), optional: true}, {what: "qemu", note: "tcg"}}
	if !report(&b, "virt", fs) {
		t.Fatalf("an unused backend's failure stopped the handler:\n%s", b.String())
	}
	if !strings.Contains(b.String(), "no   builtin VMM  no /dev/kvm") {
		t.Errorf("report %q", b.String())
	}
	fs[1].err = errors.New("no vhost-vsock")
	if report(&b, "virt", fs) {
		t.Error("the configured backend's failure did not stop the handler")
	}
}
