# shellcheck shell=bash
# lib-peers.sh: what the benchmark and comparison scripts share (sourced,
# not run): the installation of missing packages, process trees and their
# CPU time, and configurations of the peer servers, each written for one
# UDP worker (or the number given) on 127.0.0.1, its path printed.

# A path as the user gave it, made absolute from the caller's folder
# ($CALLER_PWD, set before the script changes to the repository root):
# paths on the command line or in $LBDNS are the caller's.
from_caller() { case "$1" in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$CALLER_PWD/$1" ;; esac; }

# as_root CMD...: runs CMD as root: directly when we are root, else
# through sudo.
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# distro_daemon_pids: pids of the distribution's own nsd and knot daemons
# (from their pidfiles), one per line.
distro_daemon_pids() {
  local f p
  for f in /run/nsd/nsd.pid /var/run/nsd/nsd.pid /run/knot/knot.pid /var/run/knot/knot.pid; do
    [ -r "$f" ] || continue
    p=$(tr -dc '0-9' <"$f")
    if [ -n "$p" ] && [ -d "/proc/$p" ]; then echo "$p"; fi
  done | sort -u
}

# apt_install PKG...: installs the packages with apt-get, as root or
# through sudo, without letting their services start or take port 53:
# - a policy-rc.d that refuses every start while apt runs, removed
#   afterwards (also on an interrupt) unless it was there before;
# - configuration files already on the machine are kept;
# - an nsd or knot daemon that the install started anyway is stopped.
# It never fails: what could not be installed is reported, and the caller
# checks for the tools it needs and goes on without the others.
apt_install() {
  [ $# -gt 0 ] || return 0
  if [ "$(id -u)" != 0 ] && ! command -v sudo >/dev/null; then
    echo "cannot install $*: needs root or sudo" >&2
    return 0
  fi
  echo "installing $* with apt-get" >&2
  # A subshell, so that its traps clean up even when interrupted and leave
  # the caller's traps alone.
  (
    made_policy=
    before=$(distro_daemon_pids)
    # shellcheck disable=SC2317  # run from the EXIT trap
    restore() {
      [ -z "$made_policy" ] || as_root rm -f /usr/sbin/policy-rc.d
      local p
      for p in $(distro_daemon_pids); do
        if ! grep -qx "$p" <<<"$before"; then
          echo "stopping $(cat "/proc/$p/comm" 2>/dev/null) (pid $p), started by the install" >&2
          as_root kill -TERM "$p" 2>/dev/null || true
        fi
      done
    }
    trap restore EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM HUP
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      made_policy=1
      printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
      as_root chmod 755 /usr/sbin/policy-rc.d
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 ||
      echo "apt-get update failed; installing from the package lists there are" >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
      -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
      "$@" >&2
  ) || echo "some of $* could not be installed" >&2
  hash -r
}

# descendants PID: the pids of PID's child processes and theirs, one per
# line (NSD serves from a child).
descendants() {
  local child
  # shellcheck disable=SC2013  # the children file is one line of pids
  for child in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
    echo "$child"
    descendants "$child"
  done
}

# tree_cpu_ticks PID: user+system CPU ticks (getconf CLK_TCK a second)
# used so far by PID and all its descendants (NSD serves from children).
tree_cpu_ticks() {
  local total=0 p t
  for p in $1 $(descendants "$1"); do
    # The fields after the command name, which may hold spaces ("nsd: main").
    t=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}')
    total=$((total + ${t:-0}))
  done
  echo "$total"
}

# knot_conf DIR PORT DOMAIN ZONEFILE [WORKERS]
knot_conf() {
  local dir=$1 port=$2 domain=$3 file=$4 workers=${5:-1}
  mkdir -p "$dir"
  cat >"$dir/knot.conf" <<KNOT
server:
    rundir: "$dir"
    user: $(id -un):$(id -gn)
    listen: 127.0.0.1@$port
    udp-workers: $workers
    tcp-workers: 1
    background-workers: 1
log:
  - target: stderr
    any: warning
database:
    storage: "$dir"
template:
  - id: default
    storage: "$dir"
    semantic-checks: off
    zonefile-sync: -1
    journal-content: none
zone:
  - domain: $domain
    file: "$file"
KNOT
  echo "$dir/knot.conf"
}

# nsd_conf DIR PORT DOMAIN ZONEFILE [WORKERS] (rate limiting off, minimal
# responses; WORKERS server processes, each with its own SO_REUSEPORT
# socket when there are several)
nsd_conf() {
  local dir=$1 port=$2 domain=$3 file=$4 workers=${5:-1} reuse=no
  [ "$workers" = 1 ] || reuse=yes
  mkdir -p "$dir"
  cat >"$dir/nsd.conf" <<NSD
server:
    server-count: $workers
    reuseport: $reuse
    ip-address: 127.0.0.1@$port
    username: ""
    zonesdir: "$dir"
    database: ""
    pidfile: "$dir/nsd.pid"
    xfrdfile: "$dir/xfrd.state"
    zonelistfile: "$dir/zone.list"
    minimal-responses: yes
    rrl-ratelimit: 0
    verbosity: 0
remote-control:
    control-enable: no
zone:
    name: $domain
    zonefile: "$file"
NSD
  echo "$dir/nsd.conf"
}

# start_peer NAME PORT DIR ZONEFILE [WORKERS]: starts NAME (lbdns,
# lbdns-uring, lbdns-df, echo, knot, nsd or gdnsd) serving example.com.
# from ZONEFILE on 127.0.0.1:PORT with WORKERS UDP threads or processes
# (default 1), pinned to CPUs 0..WORKERS-1 (lbdns and the echo pin each
# thread to one of them; the peers' threads share the set), its files and
# log (DIR/NAME.log) in DIR; sets last_pid. lbdns's UDP back end is $LBDNS_IO (default mmsg)
# and lbdns-uring's is uring; lbdns-df is lbdns with udp_dont_fragment.
# lbdns+KEY=VALUE[+KEY=VALUE...] is lbdns with those [server] settings
# (numbers or booleans), e.g. lbdns+batch=16+recv_buffer=212992: a variant
# that runs interleaved with lbdns and is compared with it like a peer.
# Run from the repository root; lbdns and udp-echo come from $BIN (default
# target/release), built before.
start_peer() {
  local name=$1 port=$2 tmp=$3 zone=$4 workers=${5:-1} conf cpus bin=${BIN:-target/release}
  cpus=0-$((workers - 1))
  case "$name" in
    lbdns | lbdns-uring | lbdns-df | lbdns+*)
      local io=${LBDNS_IO:-mmsg}
      [ "$name" != lbdns-uring ] || io=uring
      {
        printf '[server]\nudp_dont_fragment = %s\n' "$([ "$name" = lbdns-df ] && echo true || echo false)"
        case "$name" in lbdns+*) tr '+' '\n' <<<"${name#lbdns+}" ;; esac
      } >"$tmp/$name.toml"
      taskset -c "$cpus" "$bin/lbdns" serve --config "$tmp/$name.toml" --workers "$workers" --io "$io" \
        --listen "127.0.0.1:$port" --zone "example.com.=$zone" --log-level warn >/dev/null 2>"$tmp/$name.log" & ;;
    echo)
      taskset -c "$cpus" "$bin/udp-echo" --threads "$workers" --listen "127.0.0.1:$port" \
        >/dev/null 2>"$tmp/echo.log" & ;;
    knot)
      conf=$(knot_conf "$tmp/knot" "$port" example.com. "$PWD/$zone" "$workers")
      taskset -c "$cpus" knotd -c "$conf" >/dev/null 2>"$tmp/knot.log" & ;;
    nsd)
      conf=$(nsd_conf "$tmp/nsd" "$port" example.com. "$PWD/$zone" "$workers")
      taskset -c "$cpus" nsd -d -c "$conf" >/dev/null 2>"$tmp/nsd.log" & ;;
    gdnsd)
      mkdir -p "$tmp/gdnsd/zones"; cp "$zone" "$tmp/gdnsd/zones/example.com"
      cat >"$tmp/gdnsd/config" <<GDNSD
options => {
  listen => [ 127.0.0.1:$port ]
  run_dir => "$tmp/gdnsd/run"
  state_dir => "$tmp/gdnsd/state"
  udp_threads => $workers
  tcp_threads => 1
}
GDNSD
      taskset -c "$cpus" gdnsd -c "$tmp/gdnsd" -D -f start >/dev/null 2>"$tmp/gdnsd.log" & ;;
    *) echo "unknown server $name" >&2; return 2 ;;
  esac
  # shellcheck disable=SC2034 # the caller reads it
  last_pid=$!
}

# one_server_setup: for scripts that run one server at a time. Sets zone
# and queries (the bench zone and query mix), tmp (a scratch directory)
# and pid (the running server's, empty when none runs); on exit, kills
# that server and removes tmp.
one_server_setup() {
  # shellcheck disable=SC2034 # the caller reads them
  zone=examples/zones/example.com.zone queries=benches/data/queries.txt
  tmp=$(mktemp -d)
  pid=
  trap one_server_cleanup EXIT
}
one_server_cleanup() {
  [ -z "$pid" ] || kill "$pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$tmp"
}

# bench_executable BENCH: builds benches/BENCH.rs (release, not run) and
# prints the path of its executable (the build also lists lbdns's
# binaries; this is the benchmark's own).
bench_executable() {
  cargo bench --bench "$1" --no-run --message-format=json 2>/dev/null |
    grep '"kind":\["bench"\]' | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1
}
