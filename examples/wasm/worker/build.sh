#!/usr/bin/env bash
# Builds this example and its local OCI image (see ../build.sh).
exec "$(dirname "${BASH_SOURCE[0]}")/../build.sh" worker
