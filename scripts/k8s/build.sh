#!/usr/bin/env bash
# build.sh builds kube-apiserver, kube-controller-manager, kube-scheduler, kubelet
# and kubectl at one pinned release in ONE `go build` (they share most packages,
# so one build costs little more than kube-apiserver alone: ~12 min on 2 CPUs)
# and caches them under /var/cache/tetragon-k8s/<version>/bin, so a machine pays
# the build once. Prints the bin directory.
#
# k8s.io/kubernetes is not meant to be a dependency: its go.mod requires its 33
# staging modules (k8s.io/api, k8s.io/client-go, ...) at v0.0.0 and replaces them
# with ./staging paths, which Go ignores outside the main module. A wrapper module
# that requires k8s.io/kubernetes and replaces each staging module with the
# same-named published module at v0.<minor>.<patch> resolves them from the Go
# module proxy.
set -euo pipefail
K8S_VERSION=${K8S_VERSION:-v1.37.2}
STAGING_VERSION=v0.${K8S_VERSION#v1.}
CACHE=${K8S_CACHE:-/var/cache/tetragon-k8s}/$K8S_VERSION
BIN=$CACHE/bin
BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl)

have_all() {
	local b
	for b in "${BINARIES[@]}"; do [ -x "$BIN/$b" ] || return 1; done
	[ -f "$BIN/.complete" ]
}
if have_all; then
	echo "$BIN"
	exit 0
fi

export PATH=/usr/local/go/bin:$PATH
mkdir -p "$CACHE"
# One builder at a time: a second caller waits for the first's binaries.
exec 9>"$CACHE/.build.lock"
flock 9
if have_all; then
	echo "$BIN"
	exit 0
fi

work=$CACHE/wrapper
rm -rf "$work"
mkdir -p "$work"
cd "$work"
# The staging module list comes from k8s.io/kubernetes's own go.mod, so a new
# release's new staging modules are replaced too.
go mod download -json "k8s.io/kubernetes@$K8S_VERSION" >/dev/null
gomod=$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/$K8S_VERSION.mod
mapfile -t staging < <(sed -n 's#^\s*\(k8s\.io/[^ ]*\) => \./staging/.*#\1#p' "$gomod")
[ ${#staging[@]} -gt 0 ] || { echo "build.sh: no staging replaces in $gomod" >&2; exit 1; }
goversion=$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$gomod")
{
	echo "module tetragon.local/k8s-binaries"
	echo
	echo "go $goversion"
	echo
	echo "require k8s.io/kubernetes $K8S_VERSION"
	echo
	echo "replace ("
	for m in "${staging[@]}"; do echo "	$m => $m $STAGING_VERSION"; done
	echo ")"
} >go.mod
# tools.go names the commands so `go mod tidy` records every module they need.
{
	echo "//go:build tools"
	echo
	echo "package tools"
	echo
	echo "import ("
	for b in "${BINARIES[@]}"; do echo "	_ \"k8s.io/kubernetes/cmd/$b\""; done
	echo ")"
} >tools.go
go mod tidy
pkgs=()
for b in "${BINARIES[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
minor=${K8S_VERSION#v1.}
minor=${minor%%.*}
v=k8s.io/component-base/version
ldflags="-s -w -X $v.gitVersion=$K8S_VERSION -X $v.gitMajor=1 -X $v.gitMinor=$minor -X $v.gitTreeState=clean -X $v.buildDate=1970-01-01T00:00:00Z"
ldflags="$ldflags -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor"
mkdir -p "$BIN.tmp"
start=$(date +%s)
CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$BIN.tmp/" "${pkgs[@]}"
echo "build.sh: built ${BINARIES[*]} in $(($(date +%s) - start))s" >&2
touch "$BIN.tmp/.complete"
rm -rf "$BIN"
mv "$BIN.tmp" "$BIN"
echo "$BIN"
