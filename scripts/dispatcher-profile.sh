#!/bin/bash
# dispatcher-profile.sh: which instructions of the syscall dispatcher a
# cached call's time goes to.
#
#   sudo scripts/dispatcher-profile.sh [-n CALLS] [OUT_DIR]
#
# Runs this tree's agent with the shipped policies, then a C loop of CALLS
# pread64 of a file no policy watches (a call the verdict cache decides)
# under `perf record -e cpu-clock`, and prints the BPF symbols' samples,
# then the hottest symbol+offset pairs. It leaves in OUT_DIR (default: a
# new directory under /tmp) perf.data and the JIT image of run_sys_enter,
# one file per function (tetragon-bench -jit-dump), so that
#
#   objdump -D -b binary -mi386:x86-64 OUT_DIR/jit/bpf_prog_<tag>_<name>.bin
#
# shows the instruction at an offset: a sample lands on the instruction
# after the load that waited. docs/performance.md, "Where a cached call's
# program time goes, by instruction", reads one run. Needs perf, clang
# (CC) and no other agent running.
set -euo pipefail

calls=5000000
if [[ ${1:-} == -n ]]; then
	calls=$2
	shift 2
fi
command -v perf >/dev/null || { echo "$0: perf is not installed" >&2; exit 1; }
repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/agent-lib.sh
source "$repo/scripts/agent-lib.sh"
out=${1:-$(mktemp -d /tmp/dispatcher-profile.XXXXXX)}
mkdir -p "$out/jit" "$out/policies"
agent=
trap stop_agent EXIT

if bpftool prog show 2>/dev/null | grep -q "name run_sys_enter"; then
	echo "$0: another agent's dispatcher is loaded; stop it first" >&2
	exit 1
fi
(cd "$repo" && go build -o "$out/tetragon" ./cmd/tetragon && go build -o "$out/tetragon-bench" ./cmd/tetragon-bench)
cat >"$out/loop.c" <<'EOF'
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	char buf[64];
	int fd = open(argv[1], O_RDONLY);
	long n = atol(argv[2]);

	if (fd < 0)
		return 1;
	for (long i = 0; i < n; i++)
		pread(fd, buf, sizeof(buf), 0);
	return 0;
}
EOF
"${CC:-clang-19}" -O2 -o "$out/loop" "$out/loop.c"
echo "not watched by any policy" >"$out/plain"
cp "$repo"/policies/*.yaml "$out/policies/"

start_agent "$out/tetragon" "$out" "dispatcher-profile-$$" || exit 1

# warm: the first read resolves the file and fills the verdict cache
"$out/loop" "$out/plain" 100000
perf record -q -e cpu-clock -F 20000 -o "$out/perf.data" -- "$out/loop" "$out/plain" "$calls"
id=$(bpftool prog show | awk '/name run_sys_enter/ { sub(":", "", $1); print $1 }' | tail -1)
(cd "$out/jit" && "$out/tetragon-bench" -jit-dump "$id" >/dev/null)

perf script -i "$out/perf.data" -F ip,sym,symoff 2>/dev/null | awk '{ print $2 }' >"$out/samples"
echo "samples in the loop: $(wc -l <"$out/samples")"
echo "by BPF symbol:"
grep bpf_prog "$out/samples" | sed 's/+0x[0-9a-f]*$//' | sort | uniq -c | sort -rn | head -8
echo "by instruction (the one after the load that waited):"
grep bpf_prog "$out/samples" | sort | uniq -c | sort -rn | head -12
echo "perf.data, the JIT images (jit/) and the loop are in $out"
