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
