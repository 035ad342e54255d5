#!/bin/bash
# calls-ab.sh: compare two builds' per-call program cost, side by side.
#
#   sudo scripts/calls-ab.sh [-n PAIRS] BENCH_A BENCH_B
#
# BENCH_A and BENCH_B are tetragon-bench binaries built from two trees
# (go build -o /tmp/bench-a ./cmd/tetragon-bench, in each). Each pair runs
# A's `-only calls -rounds 1`, then B's, and reads each kind's "agent
# extra" (the agent's programs' run time per call minus the floor's, from
# the same run). It prints, per kind, the median of A, of B, and of B - A
# over the pairs. A difference of 10 ns is below one run's noise on a
# shared VM (docs/performance.md, "Where the agent's time per call goes");
# the pairs cancel what drifts between runs.
set -euo pipefail

pairs=10
if [[ ${1:-} == -n ]]; then
	pairs=$2
	shift 2
fi
(($# == 2)) || { echo "usage: $0 [-n PAIRS] BENCH_A BENCH_B" >&2; exit 2; }
a=$1 b=$2
out=$(mktemp /tmp/calls-ab.XXXXXX)
trap 'rm -f "$out"' EXIT

# extra BIN: one run, then "kind<TAB>agent extra" per call kind
extra() {
	"$1" -only calls -rounds 1 | awk '
		/^call \(median/ { on = 1; next }
		on && NF == 0 { exit }
		on { kind = $0; sub(/ +[0-9.]+ +[0-9.]+ +-?[0-9.]+$/, "", kind); print kind "\t" $NF }'
}

for ((i = 1; i <= pairs; i++)); do
	extra "$a" | sed "s/^/A\t$i\t/" >>"$out"
	extra "$b" | sed "s/^/B\t$i\t/" >>"$out"
	echo "pair $i of $pairs done" >&2
done

awk -F'\t' '
	function median(arr, n,   i, j, t) {
		for (i = 2; i <= n; i++)
			for (j = i; j > 1 && arr[j-1] > arr[j]; j--) { t = arr[j]; arr[j] = arr[j-1]; arr[j-1] = t }
		return n % 2 ? arr[(n+1)/2] : (arr[n/2] + arr[n/2+1]) / 2
	}
	{ v[$1, $2, $3] = $4; kinds[$3] = 1; if ($2 > n) n = $2 }
	END {
		printf "%-44s %10s %10s %12s\n", "call: agent extra, median ns", "A", "B", "B - A"
		for (k in kinds) {
			delete xa; delete xb; delete xd
			m = 0
			for (i = 1; i <= n; i++) {
				if (!((("A", i, k) in v) && (("B", i, k) in v))) continue
				m++
				xa[m] = v["A", i, k]; xb[m] = v["B", i, k]; xd[m] = v["B", i, k] - v["A", i, k]
			}
			printf "%-44s %10.1f %10.1f %12.1f\n", k, median(xa, m), median(xb, m), median(xd, m)
		}
	}' "$out"
