#!/usr/bin/env bash
# bench-ab.sh: one criterion benchmark, timed in turn on several builds.
#
# Usage: scripts/bench-ab.sh [--rounds N] [--time S] BENCH FILTER EXE...
#
# BENCH is a file of benches/ (select, answer or stages); FILTER picks one
# of its benchmarks (a regular expression, as criterion takes it, e.g.
# 'sticky/8-members'); each EXE is a copy of that benchmark's executable
# built at some commit (cargo bench --bench BENCH --no-run prints where it
# is). The word "current" stands for the one built from the working tree.
#
# Round after round (default 8), each executable measures the benchmark
# for S seconds (default 1) pinned to the last CPU, in turn, so that all
# see the same moments of a shared machine. It prints, per executable, the
# nanoseconds per element (per draw for select, per query for answer) of
# each round, their minimum and median. On a machine whose speed varies,
# the minimum of interleaved rounds compares builds where one criterion
# run after another does not.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib-peers.sh
. scripts/lib-peers.sh
rounds=8
secs=1
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --time) secs=$2; shift 2 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) break ;;
  esac
done
if [ $# -lt 3 ]; then sed -n '2,18p' "$0" >&2; exit 2; fi
bench=$1 filter=$2
shift 2
exes=()
for exe in "$@"; do
  if [ "$exe" = current ]; then
    exe=$(bench_executable "$bench")
  fi
  [ -x "$exe" ] || { echo "not an executable: $exe" >&2; exit 1; }
  exes+=("$exe")
done
cpu=$(($(nproc) - 1))
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(uname -r)"
echo "benchmark $bench $filter, $rounds rounds of $secs s, CPU $cpu"
for _ in $(seq "$rounds"); do
  for i in "${!exes[@]}"; do
    # criterion prints "time: [low estimate high]" and, for a group with a
    # throughput, "thrpt: [...]" in elements per second: 1e9 / that is
    # nanoseconds per element.
    out=$(taskset -c "$cpu" "${exes[$i]}" --bench --warm-up-time 0.5 --measurement-time "$secs" \
      --noplot "$filter" 2>&1)
    ns=$(echo "$out" | awk '
      /thrpt:/ { for (f = 1; f <= NF; f++) if ($f ~ /^\[/) { v = $(f + 2); u = $(f + 3); break }
        m = (u ~ /^Kelem/) ? 1e3 : (u ~ /^Melem/) ? 1e6 : (u ~ /^Gelem/) ? 1e9 : 1
        printf "%.2f", 1e9 / (v * m); exit }')
    [ -n "$ns" ] || { echo "no throughput for $filter from ${exes[$i]}:" >&2; echo "$out" | tail -5 >&2; exit 1; }
    echo "$i $ns"
  done
done | awk -v names="$(printf '%s\n' "${exes[@]}")" '
  BEGIN { n = split(names, exe, "\n") }
  { v[$1] = v[$1] " " $2 }
  END {
    for (i = 0; i < n; i++) {
      k = split(substr(v[i], 2), x, " ")
      # insertion sort for the minimum and median
      for (a = 2; a <= k; a++) { t = x[a]; b = a - 1; while (b > 0 && x[b] > t) { x[b + 1] = x[b]; b-- } x[b + 1] = t }
      med = (k % 2) ? x[(k + 1) / 2] : (x[k / 2] + x[k / 2 + 1]) / 2
      printf "%-50s min %7.2f ns  median %7.2f ns  rounds:%s\n", exe[i + 1], x[1], med, v[i]
    }
  }'
