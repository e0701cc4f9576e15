#!/usr/bin/env bash
# bench-dnsperf.sh: lbdns and Knot DNS side by side under dnsperf, one
# server thread each.
#
# Usage: scripts/bench-dnsperf.sh [--io mmsg,uring,portable] [--seconds N]
#                                 [--rounds R] [--rate QPS] [--no-knot]
#                                 [--share]
#
# Each server runs pinned to CPU 0 (taskset), with one UDP worker; dnsperf
# runs pinned to CPU 1 for N seconds (default 10) on benches/data/queries.txt
# (mostly multi-address names, some NXDOMAIN, some names in no zone) against
# examples/zones/example.com.zone. --rate caps dnsperf's offered load
# (default: as fast as it goes). With R rounds (default 1) the servers take
# turns and each figure is the median.
#
# Per server it prints: QPS, average and maximum latency, lost queries,
# server CPU % and server CPU microseconds per answered query, taken from
# utime+stime in /proc/PID/stat across the run, divided by the answers.
# --share instead runs one lbdns with a worker per CPU (not pinned by
# taskset; each worker pins itself) under dnsperf, stops it, and prints how
# many queries each worker answered: SO_REUSEPORT spreads the load.
# Only 127.0.0.1 is ever queried.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib-peers.sh
. scripts/lib-peers.sh

ios=mmsg,uring
seconds=10
rounds=1
rate=
knot=1
share=0
while [ $# -gt 0 ]; do
  case "$1" in
    --io) ios=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --no-knot) knot=0; shift ;;
    --share) share=1; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

need=()
command -v dnsperf >/dev/null || need+=(dnsperf)
[ "$knot" = 0 ] || command -v knotd >/dev/null || need+=(knot)
apt_install ${need[@]+"${need[@]}"}
export PATH="$PATH:/usr/sbin:/sbin"
if [ "$(nproc)" -lt 2 ]; then echo "needs 2 CPUs (server on 0, dnsperf on 1)" >&2; exit 1; fi

bin=${LBDNS:-target/release/lbdns}
[ -n "${LBDNS:-}" ] || cargo build --release --quiet
zone=examples/zones/example.com.zone
queries=benches/data/queries.txt
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

ticks=$(getconf CLK_TCK)
# utime + stime; fields counted after the command name, which may hold spaces.
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }

wait_answer() { # port
  for _ in $(seq 1 100); do
    if dnsperf -s 127.0.0.1 -p "$1" -d "$queries" -n 1 -t 1 2>/dev/null | grep -q 'Queries completed: *[1-9]'; then return 0; fi
    sleep 0.1
  done
  echo "server on port $1 does not answer" >&2; return 1
}

# run NAME PORT PID: one dnsperf run; prints "qps avg_ms max_ms lost cpu_pct us_per_query"
run() {
  local name=$1 port=$2 pid=$3 before after out
  before=$(cpu_ticks "$pid")
  out=$(taskset -c 1 dnsperf -s 127.0.0.1 -p "$port" -d "$queries" -l "$seconds" -c 8 -q 200 ${rate:+-Q "$rate"} 2>&1)
  after=$(cpu_ticks "$pid")
  echo "$out" >"$tmp/$name.dnsperf"
  awk -v b="$before" -v a="$after" -v t="$ticks" -v s="$seconds" '
    /Queries completed:/ { done = $3 }
    /Queries lost:/ { lost = $3 }
    /Queries per second:/ { qps = $4 }
    /Average Latency/ { avg = $4; max = $8; gsub(/[(),]/, "", max) }
    END {
      cpu = (a - b) / t
      printf "%.0f %.3f %.3f %d %.0f %.2f\n", qps, avg * 1000, max * 1000, lost, 100 * cpu / s, (done > 0 ? cpu * 1e6 / done : 0)
    }' <<<"$out"
}

start_lbdns() { # io port
  taskset -c 0 "$bin" serve --workers 1 --io "$1" --listen "127.0.0.1:$2" \
    --zone "example.com.=$zone" --log-level warn >/dev/null 2>"$tmp/lbdns-$1.log" &
  last_pid=$!
  pids+=("$last_pid")
}

start_knot() { # port
  cp "$zone" "$tmp/example.com.zone"
  conf=$(knot_conf "$tmp/knot" "$1" example.com. "$tmp/example.com.zone")
  taskset -c 0 knotd -c "$conf" >/dev/null 2>"$tmp/knot.log" &
  last_pid=$!
  pids+=("$last_pid")
}

if [ "$share" = 1 ]; then
  "$bin" serve --io mmsg --listen 127.0.0.1:5400 --zone "example.com.=$zone" >/dev/null 2>"$tmp/share.log" &
  pid=$!
  pids+=("$pid")
  wait_answer 5400
  echo "machine: $(nproc) CPUs; lbdns with one worker per CPU; dnsperf for ${seconds}s, 8 clients"
  dnsperf -s 127.0.0.1 -p 5400 -d "$queries" -l "$seconds" -c 8 -q 200 ${rate:+-Q "$rate"} 2>&1 | grep -E 'Queries (sent|completed|lost)|per second'
  kill -TERM "$pid"; wait "$pid" || true
  sed 's/\x1b\[[0-9;]*m//g' "$tmp/share.log" | grep -o 'worker=[0-9]* cpu=[0-9]* queries=[0-9]*'
  exit 0
fi

echo "machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(uname -r)"
echo "dnsperf: ${seconds}s per run, 8 clients, 200 outstanding${rate:+, capped at $rate QPS}; server on CPU 0, dnsperf on CPU 1"
declare -A results
servers=()
port=5400
IFS=, read -ra io_list <<<"$ios"
for io in "${io_list[@]}"; do
  port=$((port + 1)); start_lbdns "$io" "$port"; wait_answer "$port"
  servers+=("lbdns-$io:$port:$last_pid")
done
if [ "$knot" = 1 ]; then
  port=$((port + 1)); start_knot "$port"; wait_answer "$port"
  servers+=("knot-$(knotd -V | awk '{print $NF}'):$port:$last_pid")
fi
for _ in $(seq 1 "$rounds"); do
  for entry in "${servers[@]}"; do
    IFS=: read -r name p pid <<<"$entry"
    results[$name]+="$(run "$name" "$p" "$pid")"$'\n'
  done
done
printf '%-16s %9s %9s %9s %7s %6s %10s\n' server QPS avg_ms max_ms lost cpu% 'us/query'
for entry in "${servers[@]}"; do
  IFS=: read -r name _ _ <<<"$entry"
  printf '%s' "${results[$name]}" | sort -k6 -n | awk -v n="$name" -v r="$rounds" '
    { v[NR] = $0 } END { split(v[int((NR + 1) / 2)], f, " ");
      printf "%-16s %9d %9.3f %9.3f %7d %6d %10.2f\n", n, f[1], f[2], f[3], f[4], f[5], f[6] }'
done
