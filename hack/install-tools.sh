#!/usr/bin/env bash
# install-tools.sh installs what husk's tests need on a Debian 12 machine, as
# root: runc, a static busybox (the test images are built from it), libseccomp
# and a C toolchain for cgo, the CNI plugins (containernetworking-plugins, in
# /usr/lib/cni) for the CRI tests, and containerd + ctr +
# containerd-shim-runc-v2, runc, crictl and the wazero CLI in <repo>/.tools/bin (test/devenv
# runs a private containerd from there), QEMU for the nested-KVM harness
# (whose kernel hack/nested-assets.sh caches), and protoc with its Go and
# ttrpc plugins for `make proto`.
#
# Idempotent and quick when everything is present: it prints one line per
# step, saying what it did or why it skipped it.
set -euo pipefail

CONTAINERD_VERSION=v2.4.2
CRICTL_VERSION=v1.37.0
# qemu-system-x86 runs the nested-KVM harness (test/nested) and cpio checks
# its initrd writer. wabt's wat2wasm compiles the hook tests' WebAssembly
# text modules (wasmhost/testdata). protobuf-compiler is protoc, for
# `make proto` (agent/api). erofs-utils is mkfs.erofs: root filesystems
# reach VMs as EROFS images. clang and lld build husk's built-in hook
# policies (C on policies/c/husk.h) and the C examples of docs/hooks.md §5;
# wasi-libc and libclang-rt-14-dev-wasm32 the example that uses wasi-libc
# (hooks/doc_examples_test.go). lz4 unpacks Debian's
# vmlinuz for the tuned QEMU row of make bench's P9 (PVH boots an ELF).
APT_PACKAGES=(busybox-static libseccomp-dev pkg-config gcc libc6-dev containernetworking-plugins qemu-system-x86 cpio wabt protobuf-compiler erofs-utils clang lld wasi-libc libclang-rt-14-dev-wasm32 lz4)

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin="$repo/.tools/bin"

installed() {
	dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null | grep -qx installed
}

missing=()
for p in "${APT_PACKAGES[@]}"; do
	installed "$p" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
	echo "apt: ${APT_PACKAGES[*]} already installed, skipped"
else
	if [[ $(id -u) != 0 ]]; then
		echo "apt: ${missing[*]} missing and not root; run this as root" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	echo "apt: installed ${missing[*]}"
fi

# containerd's version line: "containerd github.com/containerd/containerd/v2 2.4.2+unknown".
want=${CONTAINERD_VERSION#v}
have_containerd() {
	[[ -x $bin/containerd && -x $bin/ctr && -x $bin/containerd-shim-runc-v2 ]] &&
		"$bin/containerd" --version 2>/dev/null | grep -qE "[[:space:]]v?${want//./\\.}([+[:space:]]|$)"
}
if have_containerd; then
	echo "containerd: $CONTAINERD_VERSION already in $bin, skipped"
else
	if ! command -v go >/dev/null; then
		echo "containerd: go not found in PATH; install Go first" >&2
		exit 1
	fi
	mkdir -p "$bin"
	# CGO_ENABLED=1 pins the plugin set: without cgo the btrfs snapshotter is
	# not compiled in, and test/devenv checks that what it disables exists.
	GOBIN="$bin" CGO_ENABLED=1 GOFLAGS= go install \
		"github.com/containerd/containerd/v2/cmd/containerd@$CONTAINERD_VERSION" \
		"github.com/containerd/containerd/v2/cmd/ctr@$CONTAINERD_VERSION" \
		"github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2@$CONTAINERD_VERSION"
	have_containerd || {
		echo "containerd: built, but $bin/containerd --version does not say $CONTAINERD_VERSION" >&2
		exit 1
	}
	echo "containerd: built $CONTAINERD_VERSION (containerd, ctr, containerd-shim-runc-v2) into $bin"
fi

# runc, the parity baseline, built from the same release as the libcontainer
# husk links (go.mod), so that the parity suite compares husk's use of
# libcontainer with runc's and not two runc releases (Debian 12's runc is
# 1.1.5). It goes into .tools/bin, first in the PATH of the test containerd.
runc_version=$(cd "$repo" && GOFLAGS= go list -m -f '{{.Version}}' github.com/opencontainers/runc)
if [[ -x $bin/runc ]] && "$bin/runc" --version 2>/dev/null | grep -qx "runc version ${runc_version#v}"; then
	echo "runc: $runc_version already in $bin, skipped"
else
	mkdir -p "$bin"
	GOBIN="$bin" CGO_ENABLED=1 GOFLAGS= go install -tags seccomp "github.com/opencontainers/runc@$runc_version"
	echo "runc: built $runc_version into $bin"
fi

# crictl, the CRI client test/cri drives containerd's CRI plugin with.
# `crictl --version` says "crictl version v1.37.0".
if [[ -x $bin/crictl ]] && "$bin/crictl" --version 2>/dev/null | grep -qx "crictl version $CRICTL_VERSION"; then
	echo "crictl: $CRICTL_VERSION already in $bin, skipped"
else
	mkdir -p "$bin"
	# -X: cri-tools' Makefile stamps the version this way; without it
	# `crictl --version` says "unknown" and the check above never matches.
	GOBIN="$bin" CGO_ENABLED=0 GOFLAGS= go install \
		-ldflags "-X sigs.k8s.io/cri-tools/pkg/version.Version=$CRICTL_VERSION" \
		"sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION"
	"$bin/crictl" --version 2>/dev/null | grep -qx "crictl version $CRICTL_VERSION" || {
		echo "crictl: built, but $bin/crictl --version does not say $CRICTL_VERSION" >&2
		exit 1
	}
	echo "crictl: built $CRICTL_VERSION into $bin"
fi

# The wazero CLI, static: the P3 baseline runs it under runc in a container
# (make bench). wabt (apt, above) gives the tests wat2wasm for their small
# modules.
WAZERO_VERSION=$(cd "$repo" && GOFLAGS= go list -m -f '{{.Version}}' github.com/tetratelabs/wazero)
if [[ -x $bin/wazero ]] && "$bin/wazero" version 2>/dev/null | grep -qx "$WAZERO_VERSION"; then
	echo "wazero: $WAZERO_VERSION already in $bin, skipped"
else
	mkdir -p "$bin"
	GOBIN="$bin" CGO_ENABLED=0 GOFLAGS= go install "github.com/tetratelabs/wazero/cmd/wazero@$WAZERO_VERSION"
	echo "wazero: built $WAZERO_VERSION into $bin"
fi

# protoc's plugins for `make proto`: protoc-gen-go and protoc-gen-go-ttrpc at
# the versions of the libraries go.mod pins, which the generated code runs
# on (agent/api's test compares against what they generate).
# `go version -m` names a binary's module version on its "mod" line.
install_plugin() { # module, command package
	local module=$1 pkg=$2 name=${2##*/} version
	version=$(cd "$repo" && GOFLAGS= go list -m -f '{{.Version}}' "$module")
	if [[ -x $bin/$name ]] && [[ $(go version -m "$bin/$name" 2>/dev/null | awk '$1 == "mod" {print $3}') == "$version" ]]; then
		echo "$name: $version already in $bin, skipped"
		return
	fi
	mkdir -p "$bin"
	GOBIN="$bin" CGO_ENABLED=0 GOFLAGS= go install "$pkg@$version"
	echo "$name: built $version into $bin"
}
install_plugin google.golang.org/protobuf google.golang.org/protobuf/cmd/protoc-gen-go
install_plugin github.com/containerd/ttrpc github.com/containerd/ttrpc/cmd/protoc-gen-go-ttrpc
