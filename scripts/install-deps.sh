#!/usr/bin/env bash
# install-deps.sh installs everything the tests need that a fresh Debian machine
# lacks: the BPF and protobuf toolchain (the generated-code drift check), jq and
# docker-compose (the appliance suite), the qemu lanes' tools and kernels, and a
# running dockerd with the test image. Runs as root; does only what is missing,
# so scripts/test.sh calls it on every run.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

# clang-19 + libbpf-dev + bpftool: BPF objects; protoc + libprotobuf-dev (its
# well-known types, wrappers.proto): the API; jq: the
# README's JSON recipes used by the tests; docker-compose: the appliance suite
# starts the agent with docker-compose.yml. etcd-server,
# containernetworking-plugins and bash-static: the Kubernetes test cluster
# (scripts/k8s/cluster.sh: etcd, the pods' bridge network, the xwing image's bash).
pkgs=(clang-19 llvm-19 libbpf-dev bpftool protobuf-compiler libprotobuf-dev jq ca-certificates docker-compose
	etcd-server containernetworking-plugins bash-static)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	# A fresh image has no package lists, an old one stale lists: update first.
	apt-get update -q
	apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# The qemu lanes' tools and kernels, for the lanes this run will boot.
qemu_lanes=()
for lane in ${LANES:-debian-6.1 debian-6.12}; do
	[ "$lane" = host ] || qemu_lanes+=("$lane")
done
[ ${#qemu_lanes[@]} -eq 0 ] || scripts/lane/install-deps.sh "${qemu_lanes[@]}"
scripts/docker/ensure-dockerd.sh
