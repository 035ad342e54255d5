# The agent image. One Dockerfile, two ways to get the binaries:
#
#   docker build -t tetragon-lite/tetragon .
#       compiles in GO_IMAGE (needs a registry for golang and distroless);
#   scripts/docker/build-image.sh
#       compiles on the host and runs this file with PREBUILT=1 and local images.
#
# Only what Docker 20.10's legacy builder understands (no RUN --mount, no
# heredocs): it is what Debian's docker.io runs.
ARG GO_IMAGE=golang:1.26-bookworm
# distroless/static: the agent and tetra are static Go binaries, and a container
# with every capability and the host's PID namespace is better off without a shell
# or a package manager for an intruder to use. BASE_IMAGE=debian:bookworm-slim
# gives one for debugging.
ARG BASE_IMAGE=gcr.io/distroless/static-debian12

FROM ${GO_IMAGE} AS binaries
# PREBUILT=1: take dist/tetragon and dist/tetra from the context; GO_IMAGE then
# only needs /bin/sh and cp.
ARG PREBUILT=0
ARG VERSION=
WORKDIR /src
# Modules first, so that a source change does not download them again.
COPY go.mod go.sum ./
RUN if [ "$PREBUILT" != 1 ]; then go mod download; fi
COPY . .
RUN set -e; \
    if [ "$PREBUILT" = 1 ]; then \
        mkdir -p /out && cp dist/tetragon dist/tetra /out/; \
    else \
        VERSION="$VERSION" sh scripts/docker/build-binaries.sh /out; \
    fi

FROM ${BASE_IMAGE}
ARG VERSION=
ARG REVISION=
LABEL org.opencontainers.image.title="tetragon" \
      org.opencontainers.image.description="eBPF runtime-security agent, Tetragon-compatible policies and events" \
      org.opencontainers.image.source="https://github.com/tetragon-lite/tetragon" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
COPY --from=binaries /out/tetragon /out/tetra /usr/bin/
# No /etc/tetragon: users mount their policy directory there (compose mounts
# ./policies), or a single policy file as in `docker run -v
# file.yaml:/etc/tetragon/`, which Docker refuses over a directory. Without
# either the agent traces process execution only, as Tetragon does. Every
# shipped policy, examples/ included, is under /usr/share/tetragon/policies.
COPY policies/ /usr/share/tetragon/policies/
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# Loading BPF needs root; the base image may default to another user.
USER 0:0
# tetra status exits non-zero until the agent is ready.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["/usr/bin/tetra", "status"]
ENTRYPOINT ["/usr/bin/tetragon"]
