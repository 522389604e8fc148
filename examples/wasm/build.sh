#!/usr/bin/env bash
# build.sh EXAMPLE builds examples/wasm/EXAMPLE (hello, wcount, worker) for
# WASI and writes a local OCI image, husk.local/wasm/EXAMPLE:latest, to
# examples/wasm/EXAMPLE/image.tar. With CONTAINERD_ADDRESS set (see
# `huskctl dev containerd`), it also imports it. No registry involved.
set -euo pipefail
ex=${1:?usage: build.sh hello|wcount|worker}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
dir="$here/$ex"
ref="husk.local/wasm/$ex:latest"

(cd "$dir" && GOOS=wasip1 GOARCH=wasm CGO_ENABLED=0 go build -trimpath -o "$dir/$ex.wasm" .)
(cd "$repo" && go run ./examples/wasm/mkimage -o "$dir/image.tar" -ref "$ref" -wasm "$dir/$ex.wasm")
if [[ -n ${CONTAINERD_ADDRESS:-} ]]; then
	ctr=${CTR:-$(command -v ctr || echo "$repo/.tools/bin/ctr")}
	"$ctr" image import "$dir/image.tar" >/dev/null
	echo "imported $ref; run it with:"
	echo "  $ctr run --rm --runtime io.containerd.husk.v2 $ref $ex"
fi
