#!/usr/bin/env bash
# bench-scale.sh: how lbdns scales with UDP workers on a many-core host,
# beside a bare echo and, if asked, Knot DNS, NSD and gdnsd.
#
# Usage: scripts/bench-scale.sh [--workers "1 2 4 8"] [--seconds S]
#                               [--loaders N] [--window Q] [--clients C] [--rounds R] [--io BACKEND]
#                               [--servers "lbdns echo gdnsd nsd knot"] [--no-pin] [--perf] [-o DIR]
#
# For each worker count W, each server serves examples/zones/example.com.zone
# on 127.0.0.1 with W workers on CPUs 0..W-1 (taskset), and N lbdns-load
# processes (default: one per CPU left after the largest W, at least one)
# each pinned to its own CPU after those, send benches/data/queries.txt as
# fast as they can for S seconds (default 5). Reports per W: answers per
# second (all loaders together), lost queries, server CPU (utime+stime of
# the server's processes over the run, in cores) and CPU microseconds per
# answer, the speed-up over the first W, and the datagrams the kernel
# dropped from a full per-CPU input backlog (netdev_max_backlog,
# /proc/net/softnet_stat), which no socket counts. lbdns-load gives a lost
# query's place in its window back after 1 s. Each loader keeps
# 128 * W / N queries outstanding (at least 16; --window sets it), so that
# about 128 wait per worker: enough to keep a worker busy, and few enough
# for a socket buffer of the kernel's default size, which the peers keep
# (lbdns asks for 4 MiB). With 256 a worker, gdnsd and Knot dropped some on
# the 2-core machine, and each loss holds its place for the 1 s timeout.
#
# Servers (--servers, default "lbdns"):
#   lbdns        W workers, each pinned to one CPU; --io picks its UDP back
#                end (auto, mmsg, uring); lbdns-uring is lbdns on uring,
#                lbdns-df lbdns with udp_dont_fragment = true, and
#                lbdns+KEY=VALUE lbdns with that [server] setting
#                (several joined by +), e.g. lbdns+batch=16
#   echo         `udp-echo --threads W`: W SO_REUSEPORT sockets, a thread
#                pinned to each CPU, no DNS work: the ceiling at each W,
#                which tells the kernel's share of a shortfall in scaling
#   knot         Knot DNS, udp-workers: W
#   nsd          NSD, server-count: W, reuseport: yes
#   gdnsd        gdnsd, udp_threads => W
# Once a server answers, gdnsd's UDP threads (gdnsd-io-udp) and NSD's
# server processes are pinned one to each of CPUs 0..W-1
# (taskset -p), as lbdns pins its workers; Knot's threads, which carry no
# names to tell them apart, share the set (--no-pin: no peer is pinned,
# their threads share the set). Missing peers are installed with apt-get when possible
# and skipped otherwise; a server that does not answer at some W is
# skipped there. Every start uses a new port, so that a process still
# exiting cannot take the next server's queries.
#
# `--rounds R` repeats everything R times, servers interleaved within each
# round (their order turned by one each round), and ends with the medians
# and, per W, the median over the rounds of each server's CPU per answer
# over lbdns's in the same round (above 1: it costs more than lbdns), and
# of lbdns's over the echo's.
#
# By default every query comes from 127.0.0.1. `--clients C` (2 to 32)
# has loader L send from C addresses of its own, 127.0.L+1.1 to
# 127.0.L+1.C (its 32 sockets take them in turn), as a server on the
# Internet hears many clients: the kernel draws each IPv4 reply's
# identification (when DF is not set, as by default in lbdns, gdnsd and
# the echo) from a counter chosen by the two addresses, so with one client
# every CPU of the server increments the same counter.
#
# On loopback the kernel's UDP path costs the senders' CPUs as much as the
# server's, so the loaders need about as many CPUs as the workers they
# load: a 16-CPU host measures up to 8 workers. Writes DIR/scale.csv, one
# row per round, server and W (default DIR: target/bench-scale). lbdns,
# udp-echo and lbdns-load come from $BIN (default target/release, built
# when missing). Only 127.0.0.1 is sent queries.
#
# `--perf` also samples the server CPUs (0..W-1) during each run with
# `perf record -e cpu-clock -g` (linux-perf; software clock, so it works
# where a VM has no hardware counters) and writes
# DIR/perf-SERVER-wW-rROUND.txt: the time per process and object (kernel,
# server, libraries, idle), then per function over all its threads, with
# the kernel's call chains. The sampling costs the servers some CPU, so
# the figures of a --perf run are for comparing profiles, not for the
# tables.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib-peers.sh
. scripts/lib-peers.sh

workers="1 2 4 8"
seconds=5
loaders=
window=
clients=1
pin_peers=1
perf_on=
rounds=1
io=auto
servers=lbdns
out=target/bench-scale
while [ $# -gt 0 ]; do
  case "$1" in
    --workers) workers=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --loaders) loaders=$2; shift 2 ;;
    --window) window=$2; shift 2 ;;
    --clients) clients=$2; shift 2 ;;
    --no-pin) pin_peers=; shift ;;
    --perf) perf_on=1; shift ;;
    --rounds) rounds=$2; shift 2 ;;
    --io) io=$2; shift 2 ;;
    --servers) servers=$2; shift 2 ;;
    -o) out=$2; shift 2 ;;
    -h|--help) sed -n '2,75p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

case "$clients" in
  [1-9] | [12][0-9] | 3[0-2]) ;;
  *) echo "--clients must be 1 to 32" >&2; exit 2 ;;
esac
if [ -n "$perf_on" ] && ! command -v perf >/dev/null; then
  echo "--perf needs perf (Debian: apt-get install linux-perf)" >&2
  exit 2
fi
bin=${BIN:-target/release}
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet --bins
fi
export BIN=$bin LBDNS_IO=$io
export PATH="$PATH:/usr/sbin:/sbin"
need=()
for name in $servers; do
  case "$name" in
    lbdns | lbdns-uring | lbdns-df | lbdns+* | echo) ;;
    knot) command -v knotd >/dev/null || need+=(knot) ;;
    nsd | gdnsd) command -v "$name" >/dev/null || need+=("$name") ;;
    *) echo "unknown server $name" >&2; exit 2 ;;
  esac
done
apt_install ${need[@]+"${need[@]}"}
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
starts=0
ticks=$(getconf CLK_TCK)
tmp=$(mktemp -d)
mkdir -p "$out"
server=
cleanup() { [ -z "$server" ] || kill "$server" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

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
echo "loaders: $loaders lbdns-load processes, ${window:-128 * W / $loaders} outstanding each, $clients source address(es) each, $seconds s per run, $rounds round(s), lbdns io $io"
header() {
  printf '%-6s %-6s %-8s %12s %8s %9s %10s %10s %8s %8s\n' \
    round server workers answers/s lost% cpu_cores us/answer per_worker speedup backlog
}
header
echo "round,server,workers,answers_per_s,lost_pct,server_cores,us_per_answer,per_worker,speedup,backlog_drops" >"$out/scale.csv"

# start SERVER W: starts it on CPUs 0..W-1, on a port of its own, and waits
# until it answers; sets server and port. Fails, with the server's log,
# when it does not answer.
start() {
  local name=$1 w=$2
  port=$((5470 + starts % 500))
  starts=$((starts + 1))
  rm -rf "${tmp:?}/$name" "$tmp/$name.log"
  start_peer "$name" "$port" "$tmp" "$zone" "$w" || return 1
  server=$last_pid
  for _ in $(seq 1 100); do
    if "$bin/lbdns-load" --server "127.0.0.1:$port" -d "$queries" --count 1 --seconds 1 2>/dev/null |
      grep -q '^answered: *1$'; then
      if kill -0 "$server" 2>/dev/null; then
        [ -z "$pin_peers" ] || pin_workers "$name" "$w"
        return 0
      fi
      break
    fi
    kill -0 "$server" 2>/dev/null || break
    sleep 0.1
  done
  tail -n 5 "$tmp/$name.log" >&2 2>/dev/null || true
  echo "skipping $name with $w workers: it did not answer" >&2
  stop
  return 1
}
# pin_workers SERVER W: pins the peer's UDP threads or processes, the i-th
# found to CPU i mod W (see the top of this file).
pin_workers() {
  local i=0 p t ids=()
  case "$1" in
    gdnsd)
      for t in /proc/"$server"/task/*; do
        case "$(cat "$t/comm" 2>/dev/null)" in gdnsd-io-udp*) ids+=("${t##*/}") ;; esac
      done ;;
    nsd)
      # The server processes: the leaves of NSD's tree (xfrd, then main,
      # then the servers). Their titles ("nsd: server 1") are no help:
      # they do not reach comm when NSD runs through bundle-peers.sh.
      for p in $(descendants "$server"); do
        [ -n "$(tr -d ' \n' </proc/"$p"/task/"$p"/children 2>/dev/null)" ] || ids+=("$p")
      done ;;
    *) return 0 ;;
  esac
  for t in ${ids[@]+"${ids[@]}"}; do
    taskset -p -c $((i % $2)) "$t" >/dev/null
    i=$((i + 1))
  done
  [ "$i" -ge "$2" ] || echo "note: $1 has $i of $2 workers to pin" >&2
}
# record_profile W: samples CPUs 0..W-1 in the background for the run;
# report_profile FILE waits for it and writes its report to FILE.
record_profile() {
  perf record -q -e cpu-clock -F 999 -g -C "0-$(($1 - 1))" -o "$tmp/perf.data" \
    -- sleep "$seconds" >/dev/null 2>&1 &
  perf_pid=$!
}
report_profile() {
  wait "$perf_pid" || { echo "note: perf record failed" >&2; return 0; }
  {
    echo "# $name, $w workers, round $round: CPUs 0-$((w - 1)), cpu-clock samples"
    perf report -i "$tmp/perf.data" --stdio --no-children --sort comm,dso -g none 2>/dev/null | grep -v '^$'
    perf report -i "$tmp/perf.data" --stdio --no-children --sort dso,sym --percent-limit 0.5 \
      -g caller,0.5,callee,function,percent --max-stack 16 2>/dev/null | grep -v '^$'
  } >"$1"
  rm -f "$tmp/perf.data"
}
stop() {
  [ -n "$server" ] || return 0
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  server=
}

read -ra server_list <<<"$servers"
for round in $(seq 1 "$rounds"); do
  # The servers' order turns by one each round, so that none always runs
  # first (on a warm or cold machine).
  for k in "${!server_list[@]}"; do
    name=${server_list[$(((k + round - 1) % ${#server_list[@]}))]}
    base=
    for w in $workers; do
      start "$name" "$w" || continue
      before=$(tree_cpu_ticks "$server")
      drops_before=$(backlog_drops)
      started=$(date +%s.%N)
      lpids=()
      win=${window:-$(((128 * w + loaders - 1) / loaders))}
      [ "$win" -ge 16 ] || win=16
      for l in $(seq 0 $((loaders - 1))); do
        cpu=$(((max + l) % cpus))
        sources=()
        [ "$clients" -eq 1 ] || sources=(--source "127.0.$((l + 1)).1" --sources "$clients")
        (pin "$cpu" "$bin/lbdns-load" --server "127.0.0.1:$port" -d "$queries" \
          --seconds "$seconds" --sockets 32 --window "$win" ${sources[@]+"${sources[@]}"} >"$tmp/load.$l" 2>&1) &
        lpids+=($!)
      done
      [ -z "$perf_on" ] || record_profile "$w"
      wait "${lpids[@]}"
      ended=$(date +%s.%N)
      after=$(tree_cpu_ticks "$server")
      backlog=$(($(backlog_drops) - drops_before))
      stop
      [ -z "$perf_on" ] || report_profile "$out/perf-$name-w$w-r$round.txt"
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

# median COLUMN SERVER W: the median of that column over the rounds (empty
# when the server never ran with W workers).
median() {
  awk -F, -v n="$2" -v w="$3" -v c="$1" '$2 == n && $3 == w {print $c}' "$out/scale.csv" |
    sort -g | awk '{v[NR] = $1} END {if (NR) printf "%.15g\n", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}
# ratios A B W: per round in which both ran, A's CPU per answer over B's
# with W workers, one a line, sorted.
ratios() {
  awk -F, -v a="$1" -v b="$2" -v w="$3" '$3 == w && $2 == a {x[$1] = $7} $3 == w && $2 == b {y[$1] = $7}
    END {for (r in x) if (r in y && y[r] > 0) print x[r] / y[r]}' "$out/scale.csv" | sort -g
}
summary() { # A B W: "median (min-max, N rounds)" of ratios A B W, or nothing
  ratios "$@" | awk '{v[NR] = $1} END {
    if (NR) printf "%.3f (%.3f-%.3f, %d rounds)", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2, v[1], v[NR], NR }'
}
if [ "$rounds" -gt 1 ]; then
  echo
  echo "medians of $rounds rounds:"
  header
  for name in $servers; do
    for w in $workers; do
      [ -n "$(median 4 "$name" "$w")" ] || continue
      row=
      for col in 4 5 6 7 8 9 10; do row="$row $(median "$col" "$name" "$w")"; done
      # shellcheck disable=SC2086
      printf '%-6s %-6s %-8s %12s %8s %9s %10s %10s %8s %8s\n' med "$name" "$w" $row
    done
  done
fi
case " $servers " in *" lbdns "*)
    for name in $servers; do
      [ "$name" != lbdns ] || continue
      if [ "$name" = echo ]; then
        echo
        echo "lbdns CPU per answer over the echo's, per round (median, min, max):"
        for w in $workers; do
          line=$(summary lbdns echo "$w")
          [ -z "$line" ] || echo "  $w workers: $line"
        done
      else
        echo
        echo "$name CPU per answer over lbdns's, per round (median, min, max; above 1: $name costs more):"
        for w in $workers; do
          line=$(summary "$name" lbdns "$w")
          [ -z "$line" ] || echo "  $w workers: $line"
        done
      fi
    done
    ;;
esac
echo "csv: $out/scale.csv"
