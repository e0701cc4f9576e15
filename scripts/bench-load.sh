#!/usr/bin/env bash
# bench-load.sh: how long lbdns takes to load a large zone, and how much
# memory it then holds.
#
# Usage: scripts/bench-load.sh [--records N] [--rounds R]
#
# Generates a zone of N records (default 1,000,000) with scripts/gen-zone.py
# under target/bench-zone/, starts the release binary on it R times
# (default 3) on a loopback port, and reports per round and as medians:
#   load_s  time from process start until it serves (it logs "serving")
#   rss_mb  resident memory 2 s after it serves (VmRSS)
#   hwm_mb  peak resident memory during the load (VmHWM)
# Each round also checks that a name from the zone is answered.
set -euo pipefail
cd "$(dirname "$0")/.."

records=1000000
rounds=3
while [ $# -gt 0 ]; do
  case "$1" in
    --records) records=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

bin=${LBDNS:-target/release/lbdns}
if [ -z "${LBDNS:-}" ]; then
  cargo build --release --quiet
fi
dir=target/bench-zone
zone=$dir/big-$records.zone
mkdir -p "$dir"
if [ ! -s "$zone" ]; then
  python3 scripts/gen-zone.py --records "$records" --origin big.test. > "$zone.tmp"
  mv "$zone.tmp" "$zone"
fi

echo "machine: $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"
echo "zone: $zone ($records records, $(du -m "$zone" | cut -f1) MB)"
printf '%-6s %8s %8s %8s\n' round load_s rss_mb hwm_mb
results=()
for round in $(seq 1 "$rounds"); do
  log=$(mktemp)
  start=$(date +%s.%N)
  "$bin" serve --listen 127.0.0.1:0 --zone "big.test.=$zone" --log-level info >/dev/null 2>"$log" &
  pid=$!
  addr=
  for _ in $(seq 1 600); do
    if addr=$(grep -o 'serving udp+tcp on [0-9.:]*' "$log" | awk '{print $4}') && [ -n "$addr" ]; then
      break
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      cat "$log" >&2; echo "lbdns exited" >&2; exit 1
    fi
    sleep 0.01
  done
  end=$(date +%s.%N)
  [ -n "$addr" ] || { kill "$pid"; cat "$log" >&2; echo "lbdns did not start" >&2; exit 1; }
  sleep 2
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
  hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
  # One query for a name from the middle of the zone (loopback only).
  python3 - "$addr" <<'PY'
import socket, sys
host, port = sys.argv[1].rsplit(":", 1)
q = bytes.fromhex("abcd00000001000000000000") + b"\x04h500\x03big\x04test\x00" + b"\x00\x01\x00\x01"
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(5)
s.sendto(q, (host, int(port)))
r = s.recv(512)
assert r[:2] == b"\xab\xcd" and r[3] & 0x0F == 0 and r[7] >= 1, "h500.big.test. not answered"
PY
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -f "$log"
  load=$(echo "$end - $start" | bc -l)
  line=$(printf '%-6s %8.2f %8.0f %8.0f' "$round" "$load" "$((rss / 1024))" "$((hwm / 1024))")
  echo "$line"
  results+=("$line")
done
median() { printf '%s\n' "${results[@]}" | awk -v c="$1" '{print $c}' | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
printf '%-6s %8.2f %8.0f %8.0f\n' median "$(median 2)" "$(median 3)" "$(median 4)"
