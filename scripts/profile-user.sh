#!/usr/bin/env bash
# profile-user.sh: how much of a saturated server's CPU is its own code,
# and where that goes, beside gdnsd and the bare echo.
#
# Usage: scripts/profile-user.sh [--seconds S] [--servers lbdns,gdnsd,echo]
#                                (knot and nsd too, when installed)
#                                [--top N] [--annotate SYMBOL]
#
# Each server runs pinned to CPU 0 with one UDP thread on
# examples/zones/example.com.zone, saturated by lbdns-load on CPU 1
# (benches/data/queries.txt), while `perf record` samples it for S seconds
# (default 8). Per server it prints the share of samples in user space
# (everything outside the kernel: the server, libc, the vDSO) and the N
# (default 12) busiest user-space symbols. The rest is the kernel's UDP
# path, which every server pays. With --annotate (e.g.
# 'lbdns::proto::handle'), also the five instructions of that function that
# took most of its samples: one far above the rest after a load points at
# a cache miss or a stalled store-to-load forward. lbdns and the echo come
# from $BIN (default target/release), as in lib-peers.sh. Needs perf
# (Debian: linux-perf; installed with apt-get when missing) and gdnsd for
# that column. Only 127.0.0.1 is ever sent queries.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib-peers.sh
. scripts/lib-peers.sh

seconds=8
servers=lbdns,gdnsd,echo
top=12
annotate=
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --servers) servers=$2; shift 2 ;;
    --top) top=$2; shift 2 ;;
    --annotate) annotate=$2; shift 2 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
if [ "$(nproc)" -lt 2 ]; then echo "needs 2 CPUs (server on 0, load on 1)" >&2; exit 1; fi
export PATH="$PATH:/usr/sbin:/sbin"
need=()
command -v perf >/dev/null || need+=(linux-perf)
[[ ",$servers," != *,gdnsd,* ]] || command -v gdnsd >/dev/null || need+=(gdnsd)
apt_install ${need[@]+"${need[@]}"}
command -v perf >/dev/null || { echo "perf is not available" >&2; exit 1; }

cargo build --release --quiet --bins
port=5431
one_server_setup

# tree_pids PID: PID and its descendants, comma-separated.
tree_pids() {
  local child
  printf '%s' "$1"
  for child in $(pgrep -P "$1" || true); do printf ','; tree_pids "$child"; done
}

echo "machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(uname -r)"
echo "saturated by lbdns-load for ${seconds}s; server on CPU 0, load on CPU 1"
IFS=, read -ra server_list <<<"$servers"
for name in "${server_list[@]}"; do
  start_peer "$name" "$port" "$tmp" "$zone"
  pid=$last_pid
  for _ in $(seq 1 100); do
    if target/release/lbdns-load --server "127.0.0.1:$port" -d "$queries" --count 20 --seconds 1 2>/dev/null |
      grep -q '^answered: *[1-9]'; then break; fi
    sleep 0.1
  done
  # The server and its descendants (NSD answers from a grandchild).
  perf record -q -F 10000 -p "$(tree_pids "$pid")" -o "$tmp/perf.data" -- sleep "$seconds" >/dev/null 2>&1 &
  recorder=$!
  taskset -c 1 target/release/lbdns-load --server "127.0.0.1:$port" -d "$queries" --seconds "$seconds" >/dev/null 2>&1
  wait "$recorder" || true
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  pid=
  echo
  perf report -i "$tmp/perf.data" --no-children --sort dso -g none 2>/dev/null |
    awk -v n="$name" '/%/ && !/^#/ { gsub("%", "", $1); if ($2 == "[kernel.kallsyms]") k += $1; else u += $1 }
      END { printf "%s: user space %.2f %% of samples, kernel %.2f %%\n", n, u, k }'
  perf report -i "$tmp/perf.data" --no-children --sort dso,sym -g none 2>/dev/null |
    awk -v top="$top" '/%/ && !/^#/ && $2 != "[kernel.kallsyms]" && shown < top { print; shown++ }'
  if [ -n "$annotate" ]; then
    echo "hottest instructions of $annotate (% of its samples):"
    perf annotate -i "$tmp/perf.data" --stdio -s "$annotate" 2>/dev/null |
      awk '/^ +[0-9]+\.[0-9]+ +:/' | sort -rn | head -n 5 || true
  fi
  rm -f "$tmp/perf.data"
  port=$((port + 1))
done
