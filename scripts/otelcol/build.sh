#!/usr/bin/env bash
# build.sh builds the OpenTelemetry Collector of this directory (the filelog
# receiver and the debug exporter, main.go) once per machine and caches it
# under /var/cache/tetragon-otelcol/<version>/, as scripts/k8s/build.sh does
# for Kubernetes. Prints the binary's path.
#
# The collector is a Go module of its own (go.mod here), so the project's
# go.mod gains none of its dependencies. All its collector modules stay at one
# release: core v0.165.0 / v1.71.0, contrib v0.165.1.
set -euo pipefail
OTELCOL_VERSION=v0.165.0
src=$(cd "$(dirname "$0")" && pwd)
CACHE=${OTELCOL_CACHE:-/var/cache/tetragon-otelcol}/$OTELCOL_VERSION
BIN=$CACHE/otelcol-tetragon
# The stamp names the sources the cached binary was built from: an edit of
# main.go, go.mod or go.sum rebuilds it.
stamp=$(cat "$src/main.go" "$src/go.mod" "$src/go.sum" | sha256sum | cut -d' ' -f1)
fresh() { [ -x "$BIN" ] && [ "$(cat "$BIN.stamp" 2>/dev/null)" = "$stamp" ]; }
if fresh; then
	echo "$BIN"
	exit 0
fi

export PATH=/usr/local/go/bin:$PATH
mkdir -p "$CACHE"
# One builder at a time: a second caller waits for the first's binary.
exec 9>"$CACHE/.build.lock"
flock 9
if fresh; then
	echo "$BIN"
	exit 0
fi
start=$(date +%s)
CGO_ENABLED=0 go -C "$src" build -trimpath -ldflags "-s -w" -o "$BIN.tmp" . ||
	{ echo "build.sh: building the OpenTelemetry Collector $OTELCOL_VERSION from the Go module proxy failed" >&2; exit 1; }
echo "build.sh: built otelcol-tetragon $OTELCOL_VERSION in $(($(date +%s) - start))s" >&2
mv "$BIN.tmp" "$BIN"
echo "$stamp" >"$BIN.stamp"
echo "$BIN"
