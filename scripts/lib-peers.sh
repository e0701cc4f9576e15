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
