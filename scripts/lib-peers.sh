# shellcheck shell=bash
# lib-peers.sh: what the benchmark scripts share (sourced, not run): the
# installation of missing packages, and configurations of the peer servers,
# each written for one UDP worker on 127.0.0.1, its path printed.

# apt_install PKG...: installs the packages with apt-get, without letting
# their services start (a policy-rc.d that refuses, removed afterwards if
# it was not there). A package that cannot be installed is reported, and
# the caller goes on without it.
apt_install() {
  [ $# -gt 0 ] || return 0
  echo "installing $* with apt-get" >&2
  local made_policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    made_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >&2 || echo "some of $* could not be installed" >&2
  [ -z "$made_policy" ] || rm -f /usr/sbin/policy-rc.d
}

# knot_conf DIR PORT DOMAIN ZONEFILE
knot_conf() {
  local dir=$1 port=$2 domain=$3 file=$4
  mkdir -p "$dir"
  cat >"$dir/knot.conf" <<KNOT
server:
    rundir: "$dir"
    user: root:root
    listen: 127.0.0.1@$port
    udp-workers: 1
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

# nsd_conf DIR PORT DOMAIN ZONEFILE (rate limiting off, minimal responses)
nsd_conf() {
  local dir=$1 port=$2 domain=$3 file=$4
  mkdir -p "$dir"
  cat >"$dir/nsd.conf" <<NSD
server:
    server-count: 1
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

# start_peer NAME PORT DIR ZONEFILE: starts NAME (lbdns, lbdns-uring, echo,
# knot, nsd or gdnsd) serving example.com. from ZONEFILE on 127.0.0.1:PORT with one UDP
# thread, pinned to CPU 0, its files and log (DIR/NAME.log) in DIR; sets
# last_pid. Run from the repository root, after a release build.
start_peer() {
  local name=$1 port=$2 tmp=$3 zone=$4 conf
  case "$name" in
    lbdns | lbdns-uring)
      local io=mmsg
      [ "$name" = lbdns ] || io=uring
      taskset -c 0 target/release/lbdns serve --workers 1 --io "$io" --listen "127.0.0.1:$port" \
        --zone "example.com.=$zone" --log-level warn >/dev/null 2>"$tmp/$name.log" & ;;
    echo)
      taskset -c 0 target/release/udp-echo --listen "127.0.0.1:$port" >/dev/null 2>"$tmp/echo.log" & ;;
    knot)
      conf=$(knot_conf "$tmp/knot" "$port" example.com. "$PWD/$zone")
      taskset -c 0 knotd -c "$conf" >/dev/null 2>"$tmp/knot.log" & ;;
    nsd)
      conf=$(nsd_conf "$tmp/nsd" "$port" example.com. "$PWD/$zone")
      taskset -c 0 nsd -d -c "$conf" >/dev/null 2>"$tmp/nsd.log" & ;;
    gdnsd)
      mkdir -p "$tmp/gdnsd/zones"; cp "$zone" "$tmp/gdnsd/zones/example.com"
      cat >"$tmp/gdnsd/config" <<GDNSD
options => {
  listen => [ 127.0.0.1:$port ]
  udp_threads => 1
  tcp_threads => 1
}
GDNSD
      taskset -c 0 gdnsd -c "$tmp/gdnsd" -D -f start >/dev/null 2>"$tmp/gdnsd.log" & ;;
    *) echo "unknown server $name" >&2; return 2 ;;
  esac
  # shellcheck disable=SC2034 # the caller reads it
  last_pid=$!
}
