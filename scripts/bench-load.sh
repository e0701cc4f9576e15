#!/usr/bin/env bash
# bench-load.sh: how long a server takes to load a large zone, and how much
# memory it then holds: lbdns, and with --peers Knot DNS and NSD too.
#
# Usage: scripts/bench-load.sh [--records N] [--rounds R] [--peers]
#
# Generates a zone of N records (default 1,000,000) with scripts/gen-zone.py
# under target/bench-zone/, starts each server on it R times (default 3) on
# a loopback port, and reports per round and as medians:
#   load_s  time from process start until a name from the zone is answered
#   cpu_s   CPU time (user + system) the server used until then
#   rss_mb  resident memory 2 s later (VmRSS over the process tree)
#   hwm_mb  peak resident memory (VmHWM, largest process of the tree)
# --peers installs knot and nsd with apt-get when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib-peers.sh
. scripts/lib-peers.sh

records=1000000
rounds=3
peers=0
while [ $# -gt 0 ]; do
  case "$1" in
    --records) records=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --peers) peers=1; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

bin=${LBDNS:-target/release/lbdns}
if [ -z "${LBDNS:-}" ]; then
  cargo build --release --quiet
fi
if [ "$peers" = 1 ] && { ! command -v knotd >/dev/null || ! command -v nsd >/dev/null; }; then
  export PATH="$PATH:/usr/sbin"
  if ! command -v knotd >/dev/null || ! command -v nsd >/dev/null; then
    apt_install knot nsd
  fi
fi
export PATH="$PATH:/usr/sbin"
dir=target/bench-zone
zone=$dir/big-$records.zone
mkdir -p "$dir"
if [ ! -s "$zone" ]; then
  python3 scripts/gen-zone.py --records "$records" --origin big.test. > "$zone.tmp"
  mv "$zone.tmp" "$zone"
fi
tmp=$(mktemp -d)
trap 'pkill -P $$ 2>/dev/null || true; rm -rf "$tmp"' EXIT

# sum (field) over the process tree: VmRSS, or max for VmHWM.
tree_kb() {
  local field=$1 pid=$2 p v total=0 max=0
  for p in $pid $(descendants "$pid"); do
    v=$(awk -v f="$field:" '$1 == f {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
    v=${v:-0}
    total=$((total + v)); [ "$v" -gt "$max" ] && max=$v
  done
  if [ "$field" = VmHWM ]; then echo "$max"; else echo "$total"; fi
}

# wait_answered PORT PID: polls every 5 ms until h500.big.test. A is
# answered with NOERROR, then prints the time (epoch seconds); fails when
# PID exits first or after 150 s.
wait_answered() {
  python3 - "$1" "$2" <<'PY'
import os, socket, sys, time
port, pid = int(sys.argv[1]), int(sys.argv[2])
q = bytes.fromhex("abcd00000001000000000000") + b"\x04h500\x03big\x04test\x00" + b"\x00\x01\x00\x01"
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(0.005)
deadline = time.time() + 150
while time.time() < deadline:
    try:
        s.sendto(q, ("127.0.0.1", port))
        r = s.recv(512)
        if r[:2] == b"\xab\xcd" and r[3] & 0x0F == 0 and r[7] >= 1:
            print(f"{time.time():.3f}")
            sys.exit(0)
    except OSError:
        time.sleep(0.005)
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit(1)
sys.exit(1)
PY
}

# cpu_s PID: user+system CPU seconds used so far by PID and its children.
cpu_s() {
  echo "$(tree_cpu_ticks "$1") $(getconf CLK_TCK)" | awk '{printf "%.2f", $1 / $2}'
}

# measure NAME PORT CMD...: prints "load_s cpu_s rss_mb hwm_mb"
measure() {
  local name=$1 port=$2; shift 2
  local start end pid cpu
  start=$(date +%s.%N)
  "$@" >/dev/null 2>"$tmp/$name.log" &
  pid=$!
  if ! end=$(wait_answered "$port" "$pid"); then
    cat "$tmp/$name.log" >&2
    kill "$pid" 2>/dev/null || true
    echo "$name did not answer" >&2
    return 1
  fi
  cpu=$(cpu_s "$pid")
  sleep 2
  local rss hwm
  rss=$(tree_kb VmRSS "$pid"); hwm=$(tree_kb VmHWM "$pid")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  pkill -f "$tmp" 2>/dev/null || true
  printf '%.2f %s %d %d\n' "$(echo "$end - $start" | bc -l)" "$cpu" "$((rss / 1024))" "$((hwm / 1024))"
}

echo "machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"
echo "zone: $zone ($records records, $(du -m "$zone" | cut -f1) MB)"
servers=(lbdns)
[ "$peers" = 1 ] && servers+=(knot nsd)
printf '%-7s %-6s %8s %8s %8s %8s\n' server round load_s cpu_s rss_mb hwm_mb
declare -A results
for round in $(seq 1 "$rounds"); do
  for name in "${servers[@]}"; do
    case "$name" in
      lbdns) line=$(measure lbdns 5460 "$bin" serve --workers 1 --listen 127.0.0.1:5460 --zone "big.test.=$zone" --log-level warn) ;;
      knot) conf=$(knot_conf "$tmp/knot" 5461 big.test. "$PWD/$zone"); line=$(measure knot 5461 knotd -c "$conf") ;;
      nsd) conf=$(nsd_conf "$tmp/nsd" 5462 big.test. "$PWD/$zone"); line=$(measure nsd 5462 nsd -d -c "$conf") ;;
    esac
    read -r load_s cpu_s rss_mb hwm_mb <<<"$line"
    printf '%-7s %-6s %8s %8s %8s %8s\n' "$name" "$round" "$load_s" "$cpu_s" "$rss_mb" "$hwm_mb"
    results[$name]+="$line"$'\n'
  done
done
for name in "${servers[@]}"; do
  median() { printf '%s' "${results[$name]}" | awk -v c="$1" 'NF {print $c}' | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
  printf '%-7s %-6s %8s %8s %8s %8s\n' "$name" median "$(median 1)" "$(median 2)" "$(median 3)" "$(median 4)"
done
