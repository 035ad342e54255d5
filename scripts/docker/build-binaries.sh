#!/bin/sh
# build-binaries.sh OUTDIR: build the shipped binaries (tetragon, tetra) into OUTDIR.
# The one definition of the release build flags, used by the Dockerfile's source
# build and by build-image.sh on the host. VERSION, when set, is stamped in.
set -eu
out=${1:?usage: build-binaries.sh OUTDIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$(dirname "$0")/../.."

# Static binaries: the runtime image has no libc.
ldflags="-s -w"
if [ -n "${VERSION:-}" ]; then
	ldflags="$ldflags -X github.com/tetragon-lite/tetragon/pkg/version.Version=$VERSION"
fi
CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags "$ldflags" -o "$out/" ./cmd/tetragon ./cmd/tetra
