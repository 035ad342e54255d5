#!/usr/bin/env bash
# Fails when the committed generated code (bpf2go objects, protobuf) differs
# from what the sources generate now.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/generate.sh
if ! git diff --exit-code --stat -- bpf pkg/api pkg/compiler/syscalls_amd64.go || [ -n "$(git status --porcelain -- bpf pkg/api pkg/compiler)" ]; then
  git status --porcelain -- bpf pkg/api pkg/compiler
  echo "generated code is out of date: run scripts/generate.sh and commit the result" >&2
  exit 1
fi
echo "generated code is up to date"
