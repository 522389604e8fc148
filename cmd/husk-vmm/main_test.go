package main

import (
	"os/exec"
	"strings"
	"testing"
)

// deps lists the packages cmd/husk-vmm links when built with tags.
func deps(t *testing.T, tags string) []string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("needs the go command in PATH")
	}
	out, err := exec.Command(goBin, "list", "-deps", "-tags", tags, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	return strings.Fields(string(out))
}

// allowed says whether the VMM process may link pkg: the standard library
// but its cryptography and debug/elf, x/sys, libseccomp's binding, husk's VMM and the
// builtin hypervisor's VMM-process side.
func allowed(pkg string) bool {
	first, _, _ := strings.Cut(pkg, "/")
	switch {
	case first == "crypto", strings.HasPrefix(pkg, "vendor/golang.org/x/crypto/"):
		// crypto/rand brings Go's FIPS 140 module (DRBG, AES, SHA-3: 160 KB
		// of binary, a 33 MB bss) for bytes getrandom(2) gives (package rng)
		return false
	case pkg == "debug/elf", first == "compress", pkg == "internal/zstd":
		// the kernel loader reads an ELF header and table itself (package
		// boot): debug/elf's section readers are 300 KB of binary
		return false
	case !strings.Contains(first, "."): // the rest of the standard library
		return true
	case pkg == "github.com/huskrt/husk/cmd/husk-vmm",
		pkg == "github.com/huskrt/husk/runtime/virt/builtin",
		pkg == "github.com/huskrt/husk/vmm",
		pkg == "github.com/huskrt/husk/version", // two strings: the build it must match (checkBuild)
		strings.HasPrefix(pkg, "github.com/huskrt/husk/vmm/"),
		strings.HasPrefix(pkg, "golang.org/x/sys/"),
		pkg == "github.com/seccomp/libseccomp-golang":
		return true
	}
	return false
}

// TestVMMBinaryLinksOnlyTheVMM: built as make builds it (husk_vmmchild),
// the VMM process's binary links nothing of the shim's besides its VMM
// (no containerd, no wazero, no runtime/virt, no cgroups library): every
// package it links is initialised, and its code paged in, in the process
// beside each guest (P7, P8). Without the tag the builtin package brings
// the shim's side, which this test would catch.
func TestVMMBinaryLinksOnlyTheVMM(t *testing.T) {
	for _, tags := range []string{"seccomp husk_vmmchild", "husk_vmmchild"} {
		var bad []string
		for _, p := range deps(t, tags) {
			if !allowed(p) {
				bad = append(bad, p)
			}
		}
		if len(bad) > 0 {
			t.Errorf("-tags %q: husk-vmm links %d packages beyond its VMM: %s", tags, len(bad), strings.Join(bad, " "))
		}
	}
	var shim []string
	for _, p := range deps(t, "seccomp") {
		if !allowed(p) {
			shim = append(shim, p)
		}
	}
	if len(shim) == 0 {
		t.Error("without husk_vmmchild the builtin package links only the VMM too: the tag no longer separates anything, or this test no longer sees it")
	}
}
