#!/usr/bin/env bash
# nested-assets.sh caches what the nested-KVM harness (test/nested) boots:
# Debian's stock cloud kernel, unpacked from the versioned package that
# linux-image-cloud-amd64 depends on, under <repo>/.tools/kernel/. It
# prints one line saying what it did or why it skipped. Needs apt's package
# lists (it runs apt-get update once if the package is unknown), not root.
#
# Layout: .tools/kernel/<package>_<version>/{boot/vmlinuz-*,lib/modules/*}
# and the symlink .tools/kernel/cloud-amd64 pointing at the newest one.
set -euo pipefail

META=linux-image-cloud-amd64
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache="$repo/.tools/kernel"

depends() {
	apt-cache depends "$META" 2>/dev/null | awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }'
}
pkg=$(depends || true)
if [[ -z $pkg ]]; then
	apt-get update -qq
	pkg=$(depends)
fi
version=$(apt-cache policy "$pkg" | awk '$1 == "Candidate:" { print $2 }')
dir="$cache/${pkg}_$version"
if compgen -G "$dir/boot/vmlinuz-*" >/dev/null && [[ -d $dir/lib/modules ]]; then
	ln -sfn "$(basename "$dir")" "$cache/cloud-amd64"
	echo "kernel: $pkg $version already in $dir, skipped"
	exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# apt-get download writes to the current directory as the _apt user when
# run as root: give it the directory, or it warns and downloads unsandboxed.
if [[ $(id -u) == 0 ]] && id _apt >/dev/null 2>&1; then
	chown _apt "$tmp"
fi
(cd "$tmp" && apt-get download -qq "$pkg=$version")
mkdir -p "$tmp/x"
dpkg-deb -x "$tmp"/*.deb "$tmp/x"
mkdir -p "$cache"
rm -rf "$dir"
mv "$tmp/x" "$dir"
ln -sfn "$(basename "$dir")" "$cache/cloud-amd64"
echo "kernel: $pkg $version unpacked into $dir"
