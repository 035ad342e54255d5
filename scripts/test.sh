#!/usr/bin/env bash
# The project's test command (README: `sudo scripts/test.sh`): generated-code
# drift, vet, then the privileged suites on every kernel lane. Prints one
# summary line per lane and a total; exits non-zero if anything failed.
# LANES="host" scripts/test.sh runs a subset (lanes: host, k8s, debian-6.1,
# debian-6.12).
set -uo pipefail
cd "$(dirname "$0")/.."

[ "$(id -u)" = 0 ] || { echo "test.sh: run as root (the suites load BPF programs)" >&2; exit 1; }

export PATH=$PATH:/usr/local/go/bin
status=0
step() { echo; echo "==> $*"; }

# A fresh machine lacks the toolchain, the lane kernels and dockerd; this only
# does what is missing. SKIP_INSTALL=1 skips it (a machine set up by hand).
if [ "${SKIP_INSTALL:-}" != 1 ]; then
	step "installing what is missing"
	scripts/install-deps.sh || { echo "test.sh: installing the test dependencies failed" >&2; exit 1; }
fi

step "generated code drift"
scripts/check-generated.sh || status=1

step "go vet"
go vet ./... || status=1

# The qemu lanes exist for kernel-dependent code; pkg/container and the
# appliance suite talk to the host's Docker engine, which the guests do not
# have, and test/logship builds an OpenTelemetry Collector (first run on a
# machine: a few minutes, then cached in /var/cache/tetragon-otelcol) with
# the Go toolchain the guests lack, so they run on the host lane only.
qemu_pkgs=$(go list ./... | grep -v -e '/pkg/container$' -e '/test/appliance$' -e '/test/logship$')

# Pins a killed test run left (a timeout skips its cleanups) keep their
# programs attached, and some of them kill: remove them before and after.
clean_test_pins() {
  rm -rf /sys/fs/bpf/tetragon-e2e-* /sys/fs/bpf/tetragon-keep-* /sys/fs/bpf/tetragon-test* /sys/fs/bpf/appliance-* 2>/dev/null || true
}
clean_test_pins
trap clean_test_pins EXIT

summary=$(mktemp)
trap 'rm -f "$summary"; clean_test_pins' EXIT
# k8s: the seed's Kubernetes steps against a real single-node cluster
# (test/k8s; the first run on a machine builds Kubernetes, cached under
# /var/cache/tetragon-k8s), on the host after its lane.
k8s_lane() {
  go test -tags k8s_e2e -count=1 -v -timeout 60m ./test/k8s 2>&1 | tee -a /dev/stderr >"$1"
  local rc=${PIPESTATUS[0]}
  awk -v rc="$rc" '/^ *--- PASS/ {p++} /^ *--- FAIL/ {f++} /^ *--- SKIP/ {s++}
    END { if (rc != 0 && f == 0) f = 1; printf "lane k8s: %d passed, %d failed, %d skipped\n", p, f, s }' "$1"
  return "$rc"
}

# lane runs one kernel lane and appends its summary line.
lane() {
  local pkgs=./...
  [ "$1" = host ] || pkgs=$qemu_pkgs
  # shellcheck disable=SC2086 # one argument per package
  scripts/lane/run.sh "$1" $pkgs 2>&1 | tee -a /dev/stderr | grep -E '^lane [^ ]+: [0-9]+ passed, [0-9]+ failed' >>"$summary"
  [ "${PIPESTATUS[0]}" = 0 ]
}

# The host lanes first, one at a time (they use both CPUs); then the qemu
# lanes side by side: each guest is one TCG thread, one CPU, so two of them
# take the time of one. Their output is printed whole, one lane after the
# other.
qemu_lanes=()
for l in ${LANES:-host k8s debian-6.1 debian-6.12}; do
  case $l in
  k8s)
    step "lane k8s"
    k8s_log=$(mktemp)
    k8s_lane "$k8s_log" >>"$summary" || status=1
    tail -1 "$summary"
    rm -f "$k8s_log"
    ;;
  host)
    step "lane host"
    lane host || status=1
    ;;
  *) qemu_lanes+=("$l") ;;
  esac
done
if [ ${#qemu_lanes[@]} -gt 0 ]; then
  step "lanes ${qemu_lanes[*]}, side by side"
  declare -A out
  for l in "${qemu_lanes[@]}"; do
    out[$l]=$(mktemp)
    (lane "$l" 2>"${out[$l]}"; echo $? >"${out[$l]}.rc") &
  done
  wait
  for l in "${qemu_lanes[@]}"; do
    step "lane $l"
    cat "${out[$l]}" >&2
    [ "$(cat "${out[$l]}.rc")" = 0 ] || status=1
    rm -f "${out[$l]}" "${out[$l]}.rc"
  done
fi

echo
cat "$summary"
awk '{p+=$3; f+=$5; s+=$7} END {printf "tests: %d passed, %d failed, %d skipped\n", p, f, s}' "$summary"
exit $status
