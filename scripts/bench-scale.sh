#!/usr/bin/env bash
# bench-scale.sh: how lbdns scales with UDP workers on a many-core host.
#
# Usage: scripts/bench-scale.sh [--workers "1 2 4 8"] [--seconds S]
#                               [--loaders N] [-o DIR]
#
# For each worker count W, lbdns serves examples/zones/example.com.zone on
# 127.0.0.1 with W workers on CPUs 0..W-1 (taskset; each worker pins itself
# to one of them), and N lbdns-load processes (default: one per CPU left
# after the largest W, at least one) each pinned to its own CPU after
# those, send benches/data/queries.txt as fast as they can for S seconds
# (default 5). Reports per W: answers per second (all loaders together),
# lost queries, server CPU (utime+stime over the run, in cores) and CPU
# microseconds per answer, and the speed-up over the first W.
#
# On loopback the kernel's UDP path costs the senders' CPUs as much as the
# server's, so the loaders need about as many CPUs as the workers they
# load: a 16-CPU host measures up to 8 workers. Writes DIR/scale.csv
# (default DIR: target/bench-scale). Binaries come from $BIN (default
# target/release, built when missing). Only 127.0.0.1 is sent queries.
set -euo pipefail
cd "$(dirname "$0")/.."

workers="1 2 4 8"
seconds=5
loaders=
out=target/bench-scale
while [ $# -gt 0 ]; do
  case "$1" in
    --workers) workers=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --loaders) loaders=$2; shift 2 ;;
    -o) out=$2; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
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
# pin CPUS CMD...: becomes CMD on CPUS (unpinned without taskset); run it
# in a subshell, `(pin ...) &`, so that $! is CMD's process id.
pin() {
  local cpus=$1; shift
  if command -v taskset >/dev/null; then exec taskset -c "$cpus" "$@"; else exec "$@"; fi
}
command -v taskset >/dev/null || echo "note: no taskset here; nothing is pinned" >&2

echo "machine: $cpus CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(uname -r)"
echo "loaders: $loaders lbdns-load processes, $seconds s per run"
printf '%-8s %12s %10s %8s %10s %10s %8s\n' workers answers/s lost% cpu_cores us/answer per_worker speedup
echo "workers,answers_per_s,lost_pct,server_cores,us_per_answer,per_worker,speedup" >"$out/scale.csv"
base=
for w in $workers; do
  (pin "0-$((w - 1))" "$bin/lbdns" serve --workers "$w" --listen "127.0.0.1:$port" \
    --zone "example.com.=$zone" --log-level warn >"$tmp/server.log" 2>&1) &
  server=$!
  up=
  for _ in $(seq 1 100); do
    if "$bin/lbdns-load" --server "127.0.0.1:$port" -d "$queries" --count 1 --seconds 1 2>/dev/null | grep -q '^answered: *1$'; then
      up=1
      break
    fi
    sleep 0.1
  done
  if [ -z "$up" ] || ! kill -0 "$server" 2>/dev/null; then
    cat "$tmp/server.log" >&2
    echo "lbdns with $w workers did not answer" >&2
    exit 1
  fi
  before=$(cpu_ticks "$server")
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
  kill "$server"; wait "$server" 2>/dev/null || true; server=
  read -r qps sent answered < <(cat "$tmp"/load.* | awk '
    /^qps:/ {q += $2} /^sent:/ {s += $2} /^answered:/ {a += $2}
    END {print q, s, a}')
  line=$(awk -v q="$qps" -v s="$sent" -v a="$answered" -v t0="$started" -v t1="$ended" \
    -v c0="$before" -v c1="$after" -v hz="$ticks" -v w="$w" -v base="${base:-0}" 'BEGIN {
      cores = (c1 - c0) / hz / (t1 - t0)
      us = a > 0 ? (c1 - c0) / hz * 1e6 / a : 0
      lost = s > 0 ? 100 * (s - a) / s : 0
      speed = base > 0 ? q / base : 1
      printf "%d %.0f %.2f %.2f %.2f %.0f %.2f", w, q, lost, cores, us, q / w, speed
    }')
  [ -n "$base" ] || base=$qps
  # shellcheck disable=SC2086
  printf '%-8s %12s %10s %8s %10s %10s %8s\n' $line
  echo "$line" | tr ' ' ',' >>"$out/scale.csv"
  rm -f "$tmp"/load.*
done
echo "csv: $out/scale.csv"
