#!/bin/sh
# build-image.sh: build the agent image on a machine without registry access.
#
# The binaries are compiled on the host with the local Go toolchain, then the
# project's one Dockerfile runs with PREBUILT=1, taking them from the build context
# instead of compiling in a golang image. Both images default to the busybox test
# image that ensure-dockerd.sh imports; point them elsewhere when you have them:
#
#   IMAGE        tag to build            (default tetragon-lite/tetragon:latest)
#   BASE_IMAGE   runtime base image      (default tetragon-test/busybox:latest)
#   GO_IMAGE     image of the first stage, needs only /bin/sh and cp here
#                                        (default: BASE_IMAGE)
#   VERSION      version stamped in      (default: git describe, else
#                                        pkg/version's default)
#
# With a registry, build straight from the repository instead:
#   docker build -t tetragon-lite/tetragon .
set -eu
repo=$(cd "$(dirname "$0")/../.." && pwd)
IMAGE=${IMAGE:-tetragon-lite/tetragon:latest}
BASE_IMAGE=${BASE_IMAGE:-tetragon-test/busybox:latest}
GO_IMAGE=${GO_IMAGE:-$BASE_IMAGE}
if [ -z "${VERSION:-}" ]; then
	VERSION=$(git -C "$repo" describe --tags --always --dirty 2>/dev/null || true)
fi
if [ -z "$VERSION" ]; then
	# Not a git checkout: the version the binaries report by default.
	VERSION=$(sed -n 's/^var Version = "\(.*\)"$/\1/p' "$repo/pkg/version/version.go")
fi
REVISION=$(git -C "$repo" rev-parse HEAD 2>/dev/null || true)

"$repo/scripts/docker/ensure-dockerd.sh"

# A context of only what the PREBUILT build reads keeps build artefacts out of the
# work tree and the upload small.
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
VERSION=$VERSION "$repo/scripts/docker/build-binaries.sh" "$ctx/dist"
cp "$repo/go.mod" "$repo/go.sum" "$ctx/"
mkdir -p "$ctx/policies"
cp -R "$repo/policies/." "$ctx/policies/"

# The legacy builder unless the caller chose otherwise: Debian's engine has no
# buildx, and the Dockerfile needs nothing of BuildKit.
DOCKER_BUILDKIT=${DOCKER_BUILDKIT:-0} docker build \
	-f "$repo/Dockerfile" \
	--build-arg PREBUILT=1 \
	--build-arg GO_IMAGE="$GO_IMAGE" \
	--build-arg BASE_IMAGE="$BASE_IMAGE" \
	--build-arg VERSION="$VERSION" \
	--build-arg REVISION="$REVISION" \
	-t "$IMAGE" "$ctx"
echo "built $IMAGE" >&2
