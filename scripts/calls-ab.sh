#!/bin/bash
# calls-ab.sh: compare builds' per-call program cost, side by side.
#
#   sudo scripts/calls-ab.sh [-n ROUNDS] BENCH_A BENCH_B [BENCH_C ...]
#
# Each BENCH is a tetragon-bench binary built from its own tree (go build
# -o /tmp/bench-a ./cmd/tetragon-bench, in each). Each round runs every
# build's `-only calls -rounds 1` in turn and reads each kind's "agent
# extra" (the agent's programs' run time per call minus the floor's, from
# the same run). It prints, per kind and build, the median extra over the
# rounds and the median of its difference from A's in the same round. A
# difference of 10 ns is below one run's noise on a shared VM
# (docs/performance.md, "Where the agent's time per call goes"); the
# rounds cancel what drifts between runs.
set -euo pipefail

rounds=10
if [[ ${1:-} == -n ]]; then
	rounds=$2
	shift 2
fi
(($# >= 2)) || { echo "usage: $0 [-n ROUNDS] BENCH_A BENCH_B [BENCH_C ...]" >&2; exit 2; }
out=$(mktemp /tmp/calls-ab.XXXXXX)
trap 'rm -f "$out"' EXIT

# extra BIN: one run, then "kind<TAB>agent extra" per call kind
extra() {
	"$1" -only calls -rounds 1 | awk '
		/^call \(median/ { on = 1; next }
		on && NF == 0 { exit }
		on { kind = $0; sub(/( +-?[0-9.]+)+$/, "", kind); print kind "\t" $NF }'
}

for ((i = 1; i <= rounds; i++)); do
	b=0
	for bench in "$@"; do
		extra "$bench" | sed "s/^/$b\t$i\t/" >>"$out"
		b=$((b + 1))
	done
	echo "round $i of $rounds done" >&2
done

names=$(printf '%s\n' "$@" | awk '{ printf "%s%c", $0, 31 }')
awk -F'\t' -v names="$names" '
	function median(arr, n,   i, j, t) {
		for (i = 2; i <= n; i++)
			for (j = i; j > 1 && arr[j-1] > arr[j]; j--) { t = arr[j]; arr[j] = arr[j-1]; arr[j-1] = t }
		return n % 2 ? arr[(n+1)/2] : (arr[n/2] + arr[n/2+1]) / 2
	}
	{ v[$1, $2, $3] = $4; kinds[$3] = 1; if ($2 > n) n = $2; if ($1 > nb) nb = $1 }
	END {
		split(names, name, "\037")
		for (b = 0; b <= nb; b++) printf "%s = %s\n", substr("ABCDEFGHIJKLMNOPQRSTUVWXYZ", b + 1, 1), name[b + 1]
		printf "\n%-36s %6s %10s %10s\n", "call: agent extra, median ns", "build", "extra", "- A"
		for (k in kinds) {
			for (b = 0; b <= nb; b++) {
				delete x; delete d
				m = 0
				for (i = 1; i <= n; i++) {
					if (!(((b, i, k) in v) && ((0, i, k) in v))) continue
					m++
					x[m] = v[b, i, k]; d[m] = v[b, i, k] - v[0, i, k]
				}
				printf "%-36s %6s %10.1f %10.1f\n", b ? "" : k, substr("ABCDEFGHIJKLMNOPQRSTUVWXYZ", b + 1, 1), median(x, m), median(d, m)
			}
		}
	}' "$out"
