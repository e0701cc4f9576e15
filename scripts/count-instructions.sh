#!/usr/bin/env bash
# count-instructions.sh: user-space instructions per query in a UDP worker,
# counted by valgrind (callgrind), not timed.
#
# Usage: scripts/count-instructions.sh [--count N] [--top T] [--bin PATH]...
#        scripts/count-instructions.sh --select BENCH... [--exe PATH]...
#
# Runs lbdns (target/release/lbdns, built first, or each --bin given, e.g.
# a copy built at another commit) under callgrind with one mmsg worker on
# examples/zones/example.com.zone, and replays benches/data/queries.txt at
# it with lbdns-load (N queries, default 20000, 32 outstanding). Only the
# worker's loop is counted (from lbdns::server::run_worker down: receiving
# and sending batches, answering), so start-up and the other threads are
# not. Prints, per binary, the instructions per answered query in all and
# in proto::handle; with --top T, also the T functions (or inlined parts of
# them, by source file) with the most instructions of their own per query.
#
# With --select BENCH (repeatable), it counts instead the instructions per
# call of lbdns::lb::select in the criterion benchmark of that name in
# benches/select.rs (e.g. sticky/8-members; it should match one), run
# for a second under callgrind with criterion's --profile-time. Each
# --exe is a copy of that benchmark's executable built at some commit (as
# scripts/bench-ab.sh takes them), counted in turn; "current", the
# default, is the one built from the working tree.
#
# Instruction counts do not depend on what else the machine is doing, so
# two builds can be compared here even where timings vary by more than the
# difference between them; they do not show cache misses or pipeline
# stalls, which timings and `perf` do. The kernel's share (most of a
# query's cost) is not counted either. Needs valgrind (installed with
# apt-get when missing). Only 127.0.0.1 is ever sent queries.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib-peers.sh
. scripts/lib-peers.sh

count=20000
top=0
bins=()
selects=()
exes=()
while [ $# -gt 0 ]; do
  case "$1" in
    --count) count=$2; shift 2 ;;
    --bin) bins+=("$2"); shift 2 ;;
    --top) top=$2; shift 2 ;;
    --select) selects+=("$2"); shift 2 ;;
    --exe) exes+=("$2"); shift 2 ;;
    -h|--help) sed -n '2,32p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
command -v valgrind >/dev/null || apt_install valgrind
if [ ${#selects[@]} -gt 0 ]; then
  [ ${#exes[@]} -gt 0 ] || exes=(current)
  for i in "${!exes[@]}"; do
    [ "${exes[$i]}" != current ] || exes[i]=$(bench_executable select)
  done
  for exe in "${exes[@]}"; do
    [ -x "$exe" ] || { echo "not an executable: $exe (could benches/select.rs be built?)" >&2; exit 1; }
  done
  out=$(mktemp)
  trap 'rm -f "$out"' EXIT
  echo "callgrind, lbdns::lb::select in benches/select.rs"
  for exe in "${exes[@]}"; do
    [ ${#exes[@]} -eq 1 ] || echo "$exe"
    printf '%-40s %12s\n' benchmark 'per select'
    for bench in "${selects[@]}"; do
      valgrind --tool=callgrind --callgrind-out-file="$out" \
        --toggle-collect='criterion::bencher::Bencher*::iter*' \
        "$exe" --bench --profile-time 1 "$bench" >/dev/null 2>&1
      # The calls into select from the benchmark loop: "COUNT (PCT) > ... (CALLSx)".
      callgrind_annotate --inclusive=yes --tree=calling "$out" 2>/dev/null | awk -v bench="$bench" '
        /> .*lbdns::lb::select \(/ && !done {
          count = $1; gsub(",", "", count)
          calls = $0; sub(/.*\(/, "", calls); sub(/x\).*/, "", calls); gsub(",", "", calls)
          printf "%-40s %12.1f\n", bench, count / calls; done = 1
        }
        END { if (!done) printf "%-40s %12s\n", bench, "no calls" }'
    done
  done
  exit 0
fi
cargo build --release --quiet --bins
[ ${#bins[@]} -gt 0 ] || bins=(target/release/lbdns)
port=5441
one_server_setup

# load N: sends N queries; prints how many were answered.
load() {
  target/release/lbdns-load --server "127.0.0.1:$port" -d "$queries" --count "$1" --window 32 \
    --seconds 300 --timeout 5 2>&1 | awk '/^answered:/ { print $2 }'
}

echo "callgrind, $count queries of $queries, one mmsg worker"
printf '%-40s %12s %18s\n' binary 'per query' 'in proto::handle'
for bin in "${bins[@]}"; do
  out=$tmp/callgrind.out
  valgrind --tool=callgrind --callgrind-out-file="$out" --toggle-collect='lbdns::server::run_worker*' \
    "$bin" serve --workers 1 --io mmsg --listen "127.0.0.1:$port" --zone "example.com.=$zone" \
    --log-level warn >/dev/null 2>"$tmp/valgrind.log" &
  pid=$!
  # Under valgrind the server takes seconds to start; the queries that
  # find it ready count too.
  answered=0
  for _ in $(seq 1 120); do
    got=$(load 1)
    answered=$((answered + ${got:-0}))
    [ "$answered" -eq 0 ] || break
    sleep 0.5
  done
  if [ "$answered" -eq 0 ]; then
    echo "$bin did not answer under valgrind: $(tail -n 3 "$tmp/valgrind.log")" >&2
    exit 1
  fi
  got=$(load "$count")
  answered=$((answered + ${got:-0}))
  kill -INT "$pid"
  wait "$pid" 2>/dev/null || true
  pid=
  callgrind_annotate --inclusive=yes "$out" 2>/dev/null | awk -v n="$answered" -v bin="$bin" '
    /PROGRAM TOTALS/ { gsub(",", "", $1); total = $1 }
    /lbdns::proto::handle \[/ && !handle { gsub(",", "", $1); handle = $1 }
    END { printf "%-40s %12.0f %18.0f\n", bin, total / n, handle / n }'
  [ "$top" -gt 0 ] || continue
  # Self counts, busiest first: "COUNT (PCT)  FILE:FUNCTION [OBJECT]".
  callgrind_annotate "$out" 2>/dev/null | awk -v n="$answered" -v top="$top" '
    /file:function/ { listing = 1; next }
    listing && /^ *[0-9,]+ \(/ {
      line = $0; count = $1; gsub(",", "", count)
      sub(/^ *[0-9,]+ \( *[0-9.]+%\) +/, "", line); sub(/ \[[^]]*\]$/, "", line)
      sub(/.*\/registry\/src\/[^\/]*\//, "", line); sub(/^\/rustc\/[0-9a-f]+\/library\//, "", line)
      printf "  %8.1f  %s\n", count / n, substr(line, 1, 110)
      if (++shown == top) exit
    }'
done
