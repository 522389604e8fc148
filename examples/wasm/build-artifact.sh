#!/usr/bin/env bash
# build-artifact.sh EXAMPLE builds examples/wasm/EXAMPLE (hello, wcount,
# worker) for WASI and writes it as a Wasm OCI artifact — an image whose one
# layer is the module (application/wasm, platform wasip1/wasm), not a tar —
# husk.local/wasm/EXAMPLE-artifact:latest, to
# examples/wasm/EXAMPLE/artifact.tar. With CONTAINERD_ADDRESS set (see
# `huskctl dev containerd`), it also imports it. No registry involved.
set -euo pipefail
ex=${1:?usage: build-artifact.sh hello|wcount|worker}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
dir="$here/$ex"
ref="husk.local/wasm/$ex-artifact:latest"

(cd "$dir" && GOOS=wasip1 GOARCH=wasm CGO_ENABLED=0 go build -trimpath -o "$dir/$ex.wasm" .)
(cd "$repo" && go run ./examples/wasm/mkimage -artifact -o "$dir/artifact.tar" -ref "$ref" -wasm "$dir/$ex.wasm")
if [[ -n ${CONTAINERD_ADDRESS:-} ]]; then
	ctr=${CTR:-$(command -v ctr || echo "$repo/.tools/bin/ctr")}
	# The artifact's only platform is wasip1/wasm: import it (ctr imports
	# the host's platform otherwise) without unpacking (no snapshotter
	# unpacks wasip1/wasm; the rootfs is empty anyway).
	"$ctr" image import --platform wasip1/wasm --no-unpack "$dir/artifact.tar" >/dev/null
	echo "imported $ref; run it with:"
	echo "  $ctr run --rm --runtime io.containerd.husk.v2 $ref $ex"
fi
