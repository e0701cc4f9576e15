#!/usr/bin/env bash
# bench-scale.sh: how lbdns scales with UDP workers on a many-core host.
#
# Usage: scripts/bench-scale.sh [--workers "1 2 4 8"] [--seconds S]
#                               [--loaders N] [--rounds R] [--io BACKEND]
#                               [--servers "lbdns echo"] [-o DIR]
#
# For each worker count W, lbdns serves examples/zones/example.com.zone on
# 127.0.0.1 with W workers on CPUs 0..W-1 (taskset; each worker pins itself
# to one of them), and N lbdns-load processes (default: one per CPU left
# after the largest W, at least one) each pinned to its own CPU after
# those, send benches/data/queries.txt as fast as they can for S seconds
# (default 5). Reports per W: answers per second (all loaders together),
# lost queries, server CPU (utime+stime over the run, in cores) and CPU
# microseconds per answer, the speed-up over the first W, and the
# datagrams the kernel dropped from a full per-CPU input backlog
# (netdev_max_backlog, /proc/net/softnet_stat), which no socket counts.
# lbdns-load gives a lost query's place in its window back after 1 s.
#
# `--servers "lbdns echo"` also runs `udp-echo --threads W` the same way:
# W SO_REUSEPORT sockets, a thread pinned to each of CPUs 0..W-1, no DNS
# work. It is the ceiling at each W, and tells the kernel's share of any
# shortfall in scaling from lbdns's. `--rounds R` repeats everything R
# times, servers interleaved within each round, and ends with the medians
# and, per W, the median of lbdns's CPU per answer over the echo's in the
# same round. `--io` picks lbdns's UDP back end (auto, mmsg, uring).
#
# On loopback the kernel's UDP path costs the senders' CPUs as much as the
# server's, so the loaders need about as many CPUs as the workers they
# load: a 16-CPU host measures up to 8 workers. Writes DIR/scale.csv, one
# row per round, server and W (default DIR: target/bench-scale). Binaries
# come from $BIN (default target/release, built when missing). Only
# 127.0.0.1 is sent queries.
set -euo pipefail
cd "$(dirname "$0")/.."

workers="1 2 4 8"
seconds=5
loaders=
rounds=1
io=auto
servers=lbdns
out=target/bench-scale
while [ $# -gt 0 ]; do
  case "$1" in
    --workers) workers=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --loaders) loaders=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --io) io=$2; shift 2 ;;
    --servers) servers=$2; shift 2 ;;
    -o) out=$2; shift 2 ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

bin=${BIN:-target/release}
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet --bins
fi
cpus=$(nproc)
max=0
for w in $workers; do [ "$w" -gt "$max" ] && max=$w; done
if [ -z "$loaders" ]; then
  loaders=$((cpus - max))
  [ "$loaders" -ge 1 ] || loaders=1
fi
if [ $((max + loaders)) -gt "$cpus" ]; then
  echo "note: $max workers and $loaders loaders share $cpus CPUs; figures will understate scaling" >&2
fi
zone=examples/zones/example.com.zone
queries=benches/data/queries.txt
port=5470
ticks=$(getconf CLK_TCK)
tmp=$(mktemp -d)
mkdir -p "$out"
server=
cleanup() { [ -z "$server" ] || kill "$server" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# Datagrams the kernel dropped because a CPU's input backlog was full
# (netdev_max_backlog), over all CPUs: losses no socket counts.
backlog_drops() {
  local n=0 _processed dropped _rest
  if [ -r /proc/net/softnet_stat ]; then
    while read -r _processed dropped _rest; do n=$((n + 16#$dropped)); done </proc/net/softnet_stat
  fi
  echo "$n"
}
# pin CPUS CMD...: becomes CMD on CPUS (unpinned without taskset); run it
# in a subshell, `(pin ...) &`, so that $! is CMD's process id.
pin() {
  local cpus=$1; shift
  if command -v taskset >/dev/null; then exec taskset -c "$cpus" "$@"; else exec "$@"; fi
}
command -v taskset >/dev/null || echo "note: no taskset here; nothing is pinned" >&2

echo "machine: $cpus CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(uname -r)"
echo "loaders: $loaders lbdns-load processes, $seconds s per run, $rounds round(s), lbdns io $io"
header() {
  printf '%-6s %-6s %-8s %12s %8s %9s %10s %10s %8s %8s\n' \
    round server workers answers/s lost% cpu_cores us/answer per_worker speedup backlog
}
header
echo "round,server,workers,answers_per_s,lost_pct,server_cores,us_per_answer,per_worker,speedup,backlog_drops" >"$out/scale.csv"

# start SERVER W: starts it on CPUs 0..W-1 and waits until it answers.
start() {
  local name=$1 w=$2
  if [ "$name" = echo ]; then
    (pin "0-$((w - 1))" "$bin/udp-echo" --threads "$w" --listen "127.0.0.1:$port" \
      >"$tmp/server.log" 2>&1) &
  else
    (pin "0-$((w - 1))" "$bin/lbdns" serve --workers "$w" --io "$io" --listen "127.0.0.1:$port" \
      --zone "example.com.=$zone" --log-level warn >"$tmp/server.log" 2>&1) &
  fi
  server=$!
  for _ in $(seq 1 100); do
    if "$bin/lbdns-load" --server "127.0.0.1:$port" -d "$queries" --count 1 --seconds 1 2>/dev/null |
      grep -q '^answered: *1$'; then
      kill -0 "$server" 2>/dev/null && return 0
      break
    fi
    sleep 0.1
  done
  cat "$tmp/server.log" >&2
  echo "$name with $w workers did not answer" >&2
  exit 1
}

for round in $(seq 1 "$rounds"); do
  for name in $servers; do
    base=
    for w in $workers; do
      start "$name" "$w"
      before=$(cpu_ticks "$server")
      drops_before=$(backlog_drops)
      started=$(date +%s.%N)
      lpids=()
      for l in $(seq 0 $((loaders - 1))); do
        cpu=$(((max + l) % cpus))
        (pin "$cpu" "$bin/lbdns-load" --server "127.0.0.1:$port" -d "$queries" \
          --seconds "$seconds" --sockets 32 --window 1024 >"$tmp/load.$l" 2>&1) &
        lpids+=($!)
      done
      wait "${lpids[@]}"
      ended=$(date +%s.%N)
      after=$(cpu_ticks "$server")
      backlog=$(($(backlog_drops) - drops_before))
      kill "$server"; wait "$server" 2>/dev/null || true; server=
      read -r qps sent answered < <(cat "$tmp"/load.* | awk '
        /^qps:/ {q += $2} /^sent:/ {s += $2} /^answered:/ {a += $2}
        END {print q, s, a}')
      line=$(awk -v q="$qps" -v s="$sent" -v a="$answered" -v t0="$started" -v t1="$ended" \
        -v c0="$before" -v c1="$after" -v hz="$ticks" -v w="$w" -v base="${base:-0}" -v kd="$backlog" 'BEGIN {
          cores = (c1 - c0) / hz / (t1 - t0)
          us = a > 0 ? (c1 - c0) / hz * 1e6 / a : 0
          lost = s > 0 ? 100 * (s - a) / s : 0
          speed = base > 0 ? q / base : 1
          printf "%d %.0f %.2f %.2f %.2f %.0f %.2f %d", w, q, lost, cores, us, q / w, speed, kd
        }')
      [ -n "$base" ] || base=$qps
      # shellcheck disable=SC2086
      printf '%-6s %-6s %-8s %12s %8s %9s %10s %10s %8s %8s\n' "$round" "$name" $line
      echo "$round,$name,${line// /,}" >>"$out/scale.csv"
      rm -f "$tmp"/load.*
    done
  done
done

if [ "$rounds" -gt 1 ]; then
  echo
  echo "medians of $rounds rounds:"
  header
  for name in $servers; do
    for w in $workers; do
      row=
      for col in 4 5 6 7 8 9 10; do
        m=$(awk -F, -v n="$name" -v w="$w" -v c="$col" '$2 == n && $3 == w {print $c}' "$out/scale.csv" |
          sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}')
        row="$row $m"
      done
      # shellcheck disable=SC2086
      printf '%-6s %-6s %-8s %12s %8s %9s %10s %10s %8s %8s\n' med "$name" "$w" $row
    done
  done
fi
case " $servers " in *" lbdns "*) case " $servers " in *" echo "*)
    echo
    echo "lbdns CPU per answer over the echo's, per round (median, min, max):"
    for w in $workers; do
      awk -F, -v w="$w" '$3 == w && $2 == "lbdns" {l[$1] = $7} $3 == w && $2 == "echo" {e[$1] = $7}
        END {for (r in l) if (r in e && e[r] > 0) print l[r] / e[r]}' "$out/scale.csv" | sort -g |
        awk -v w="$w" '{v[NR] = $1} END {
          if (NR) printf "  %d workers: %.3f (%.3f-%.3f, %d rounds)\n", w,
            (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2, v[1], v[NR], NR }'
    done
    ;;
esac ;; esac
echo "csv: $out/scale.csv"
