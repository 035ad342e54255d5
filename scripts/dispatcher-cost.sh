#!/bin/bash
# dispatcher-cost.sh: what the syscall dispatcher's two programs cost per
# open/read/close of a file no policy matches, for one or more agent builds,
# alternated.
#
#   sudo scripts/dispatcher-cost.sh [-r ROUNDS] AGENT_BINARY...
#
# Each round runs each agent in turn with the shipped policies, then
# tetragon-bench's loop (-loop-child) under `perf record -g`, and prints,
# per direction (sys_enter, sys_exit), its programs' inclusive share of the
# loop's samples (helpers and map code included) times the loop's time per
# operation: nanoseconds per open/read/close. bpf_stats' run_time_ns cannot
# split a call's cost this way, and ops/s ratios swing by more than the
# differences measured here on a shared VM. Needs perf, root and no other
# agent running (the script checks: another agent's dispatcher runs on the
# loop's calls too).
set -euo pipefail

rounds=3
if [[ ${1:-} == -r ]]; then
	rounds=$2
	shift 2
fi
(($# > 0)) || { echo "usage: $0 [-r ROUNDS] AGENT_BINARY..." >&2; exit 2; }
command -v perf >/dev/null || { echo "$0: perf is not installed" >&2; exit 1; }

repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/agent-lib.sh
source "$repo/scripts/agent-lib.sh"
work=$(mktemp -d /tmp/dispatcher-cost.XXXXXX)
agent=
cleanup() {
	stop_agent
	rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/bench" "$repo/cmd/tetragon-bench"
mkdir -p "$work/policies"
cp "$repo"/policies/*.yaml "$work/policies/"
echo "not watched by any policy" >"$work/plain"

dispatchers() { bpftool prog show 2>/dev/null | grep -c "name gen_sys_enter" || true; }
if [[ $(dispatchers) != 0 ]]; then
	echo "$0: another agent's dispatcher is loaded; stop it first" >&2
	exit 1
fi

for ((r = 1; r <= rounds; r++)); do
	for bin in "$@"; do
		start_agent "$bin" "$work" "dispatcher-cost-$$" || exit 1
		if [[ $(dispatchers) != 1 ]]; then
			echo "$0: another agent's dispatcher appeared; stop it first" >&2
			exit 1
		fi
		# one window: the looper runs one per line it reads
		ops=$(echo | perf record -q -g -e cpu-clock -F 4000 -o "$work/perf.data" -- \
			"$work/bench" -loop-child "$work/plain" -window 5s)
		perf report -i "$work/perf.data" --children --sort sym -q -g none 2>/dev/null |
			awk -v ops="$ops" -v bin="$bin" -v round="$r" '
				$NF ~ /^bpf_prog_[0-9a-f]+_(gen|disp|run|filt|pass)_sys_(enter|exit)$/ {
					sub(/%/, "", $1); name = $NF; sub(/^bpf_prog_[0-9a-f]+_(gen|disp|run|filt|pass)_/, "gen_", name)
					ns[name] += $1 / 100 * 1e9 / ops
				}
				END {
					printf "round %d  %-40s %8.0f ops/s  sys_enter %5.0f ns/op  sys_exit %5.0f ns/op  both %5.0f ns/op\n",
						round, bin, ops, ns["gen_sys_enter"], ns["gen_sys_exit"], ns["gen_sys_enter"] + ns["gen_sys_exit"]
				}'
		stop_agent
	done
done
