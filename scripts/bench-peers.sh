#!/usr/bin/env bash
# bench-peers.sh: lbdns beside Knot DNS, NSD, gdnsd and a bare UDP echo,
# one server thread each, under the same load.
#
# Usage: scripts/bench-peers.sh [--rounds R] [--seconds S] [--rate QPS]
#                               [--servers lbdns,knot,nsd,gdnsd,echo]
#                               (lbdns-uring: lbdns with --io uring;
#                               lbdns-df: with udp_dont_fragment = true;
#                               lbdns+KEY=VALUE: with that [server] setting)
#                               [--modes full,rate,saturated] [-o DIR]
#
# Every server serves examples/zones/example.com.zone on 127.0.0.1 with one
# UDP thread, pinned to CPU 0 (taskset); the load runs pinned to CPU 1:
#   full       dnsperf as fast as it goes (8 clients, 200 outstanding)
#   rate       dnsperf at a fixed offered rate (--rate, default 150000)
#   saturated  lbdns-load (sendmmsg, 16 source ports, 512 outstanding),
#              which can keep one server core busy; dnsperf cannot here
#              (its avg_ms column is the median latency)
# Rounds are interleaved (each round runs every mode on every server, the
# servers' order rotated by one each round so that none always goes first)
# and each figure is the median over the rounds. Per run: QPS, average
# latency, lost queries, server CPU % and server CPU microseconds per
# answer (utime+stime from /proc/PID/stat across the run, divided by
# answers). The "vs lbdns" column pairs each server's run with lbdns's in
# the same round and mode: the median of those per-round ratios of CPU per
# answer (above 1: the server costs more than lbdns), with their range,
# which shows whether a gap is larger than the round-to-round noise.
#
# The echo server answers each datagram with itself through the same
# recvmmsg/sendmmsg loop as lbdns: the cost of the loopback UDP path alone.
# NSD runs with rate limiting off and minimal responses.
#
# Writes DIR/results.csv (every run), DIR/summary.csv (medians) and, when
# gnuplot is present (installed with apt when missing), DIR/cpu.svg.
# Default DIR: target/bench-peers. Installs dnsperf, knot, nsd and gdnsd
# with apt-get when missing. Only 127.0.0.1 is ever sent queries.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib-peers.sh
. scripts/lib-peers.sh

rounds=3
seconds=10
rate=150000
servers=lbdns,knot,nsd,gdnsd,echo
modes=full,rate,saturated
out=target/bench-peers
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --servers) servers=$2; shift 2 ;;
    --modes) modes=$2; shift 2 ;;
    -o) out=$2; shift 2 ;;
    -h|--help) sed -n '2,35p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
if [ "$(nproc)" -lt 2 ]; then echo "needs 2 CPUs (server on 0, load on 1)" >&2; exit 1; fi

need=()
command -v dnsperf >/dev/null || need+=(dnsperf)
command -v knotd >/dev/null || [ -x /usr/sbin/knotd ] || need+=(knot)
command -v nsd >/dev/null || [ -x /usr/sbin/nsd ] || need+=(nsd)
command -v gdnsd >/dev/null || [ -x /usr/sbin/gdnsd ] || need+=(gdnsd)
command -v gnuplot >/dev/null || need+=(gnuplot-nox)
apt_install ${need[@]+"${need[@]}"}
export PATH="$PATH:/usr/sbin:/sbin"

cargo build --release --quiet --bins
zone=examples/zones/example.com.zone
queries=benches/data/queries.txt
tmp=$(mktemp -d)
mkdir -p "$out"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
ticks=$(getconf CLK_TCK)

wait_answer() { # port
  for _ in $(seq 1 100); do
    if dnsperf -s 127.0.0.1 -p "$1" -d "$queries" -n 1 -t 1 2>/dev/null | grep -q 'Queries completed: *[1-9]'; then return 0; fi
    sleep 0.1
  done
  return 1
}

# start NAME PORT: starts a server pinned to CPU 0; sets last_pid.
start() {
  start_peer "$1" "$2" "$tmp" "$zone"
  pids+=("$last_pid")
}

# run NAME MODE PORT PID -> "qps avg_ms lost cpu_pct us_per_answer"
run() {
  local name=$1 mode=$2 port=$3 pid=$4 before after text
  before=$(tree_cpu_ticks "$pid")
  case "$mode" in
    full) text=$(taskset -c 1 dnsperf -s 127.0.0.1 -p "$port" -d "$queries" -l "$seconds" -c 8 -q 200 2>&1) ;;
    rate) text=$(taskset -c 1 dnsperf -s 127.0.0.1 -p "$port" -d "$queries" -l "$seconds" -c 8 -q 200 -Q "$rate" 2>&1) ;;
    saturated) text=$(taskset -c 1 target/release/lbdns-load --server "127.0.0.1:$port" -d "$queries" --seconds "$seconds" 2>&1) ;;
  esac
  after=$(tree_cpu_ticks "$pid")
  awk -v b="$before" -v a="$after" -v t="$ticks" -v s="$seconds" '
    /Queries completed:/ { done = $3 }
    /Queries lost:/ { lost = $3 }
    /Queries per second:/ { qps = $4 }
    /Average Latency/ { avg = $4 * 1000 }
    /^answered:/ { done = $2 }
    /^lost:/ { lost = $2 }
    /^qps:/ { qps = $2 }
    /^latency:/ { avg = $3 / 1000 }
    END {
      cpu = (a - b) / t
      printf "%.0f %.3f %d %.0f %.3f\n", qps, avg, lost, 100 * cpu / s, (done > 0 ? cpu * 1e6 / done : 0)
    }' <<<"$text"
}

echo "machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(uname -r)"
echo "load: ${seconds}s per run, $rounds rounds; servers on CPU 0, load on CPU 1; zone $zone, queries $queries"
IFS=, read -ra server_list <<<"$servers"
IFS=, read -ra mode_list <<<"$modes"
declare -A port_of pid_of
port=5410
for name in "${server_list[@]}"; do
  port=$((port + 1))
  case "$name" in
    knot) tool=knotd ;;
    nsd | gdnsd) tool=$name ;;
    *) tool=true ;;
  esac
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "skipping $name: not installed" >&2
    continue
  fi
  start "$name" "$port"
  if wait_answer "$port"; then
    port_of[$name]=$port
    pid_of[$name]=$last_pid
  else
    echo "skipping $name: it did not answer ($(tail -n 3 "$tmp/$name.log" 2>/dev/null | tr '\n' ' '))" >&2
  fi
done
echo "round,mode,server,qps,avg_ms,lost,cpu_pct,us_per_answer" >"$out/results.csv"
count=${#server_list[@]}
for round in $(seq 1 "$rounds"); do
  for mode in "${mode_list[@]}"; do
    for k in $(seq 0 $((count - 1))); do
      name=${server_list[$(((k + round - 1) % count))]}
      [ -n "${port_of[$name]:-}" ] || continue
      line=$(run "$name" "$mode" "${port_of[$name]}" "${pid_of[$name]}")
      echo "$round,$mode,$name,${line// /,}" >>"$out/results.csv"
    done
  done
done
# ratio MODE SERVER -> "median min max" of the per-round ratios of the
# server's CPU per answer to lbdns's (empty without lbdns runs).
ratio() {
  awk -F, -v m="$1" -v s="$2" '
    $2 == m && $3 == "lbdns" { base[$1] = $8 }
    $2 == m && $3 == s { v[$1] = $8 }
    END { for (r in v) if (base[r] > 0) printf "%.4f\n", v[r] / base[r] }' "$out/results.csv" |
    sort -g | awk '{ v[NR] = $1 } END { if (NR) printf "%.3f %.3f %.3f", v[int((NR + 1) / 2)], v[1], v[NR] }'
}
# Medians per (mode, server).
echo "mode,server,qps,avg_ms,lost,cpu_pct,us_per_answer,vs_lbdns,vs_lbdns_min,vs_lbdns_max" >"$out/summary.csv"
printf '%-10s %-11s %9s %8s %7s %6s %10s  %s\n' mode server QPS avg_ms lost cpu% 'us/answer' 'vs lbdns (range)'
for mode in "${mode_list[@]}"; do
  for name in "${server_list[@]}"; do
    [ -n "${port_of[$name]:-}" ] || continue
    median() { grep ",$mode,$name," "$out/results.csv" | cut -d, -f"$1" | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
    row="$(median 4),$(median 5),$(median 6),$(median 7),$(median 8)"
    read -r rmed rmin rmax <<<"$(ratio "$mode" "$name")" || true
    echo "$mode,$name,$row,${rmed:-},${rmin:-},${rmax:-}" >>"$out/summary.csv"
    IFS=, read -r q a l c u <<<"$row"
    vs=
    [ -z "${rmed:-}" ] || vs="$rmed ($rmin-$rmax)"
    printf '%-10s %-11s %9s %8s %7s %6s %10s  %s\n' "$mode" "$name" "$q" "$a" "$l" "$c" "$u" "$vs"
  done
done
if command -v gnuplot >/dev/null; then
  awk -F, 'NR > 1 { print $1 "-" $2, $7 }' "$out/summary.csv" >"$tmp/chart.dat"
  gnuplot <<PLOT
set terminal svg size 900,480 background "white"
set output "$out/cpu.svg"
set title "Server CPU per answered query (lower is better), medians of $rounds rounds"
set ylabel "CPU microseconds per answer"
set style fill solid 0.7
set boxwidth 0.6
set xtics rotate by -45
set grid y
plot "$tmp/chart.dat" using 0:2:xtic(1) with boxes notitle
PLOT
  echo "chart: $out/cpu.svg"
fi
echo "results: $out/results.csv, $out/summary.csv"
