#!/usr/bin/env bash
# Regenerates every generated file: the protobuf/gRPC code and the bpf2go
# objects. Needs protoc (Debian protobuf-compiler, plus libprotobuf-dev for
# google/protobuf/*.proto in /usr/include) and clang-19; the Go plugins
# come from go.mod's tool directives, so their versions are pinned.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/" google.golang.org/protobuf/cmd/protoc-gen-go google.golang.org/grpc/cmd/protoc-gen-go-grpc

PATH="$bin:$PATH" protoc -I pkg/api -I /usr/include \
  --go_out=pkg/api --go_opt=paths=source_relative \
  --go-grpc_out=pkg/api --go-grpc_opt=paths=source_relative \
  pkg/api/tetragon.proto

# first: bpf/lib/syscalls.h is compiled into the dispatcher
scripts/gen-syscalls.sh
# clang 19's BTF for dispatch.c lists some types in an order that depends
# on the length of the source's absolute path: the objects are built in a
# copy of bpf/ at a path of one length (mktemp's template), so that every
# checkout generates the same bytes
gen=$(mktemp -d /tmp/tetragon-generate.XXXXXXXX)
trap 'rm -rf "$bin" "$gen"' EXIT
cp go.mod go.sum "$gen/"
cp -r bpf "$gen/"
(cd "$gen" && BPF_CLANG=${BPF_CLANG:-clang-19} go generate ./bpf/...)
cp "$gen"/bpf/*_bpfel.go "$gen"/bpf/*_bpfel.o bpf/
