# lib-peers.sh: configurations of the peer servers for the benchmark
# scripts (sourced, not run). Each writes a config for one UDP worker on
# 127.0.0.1 and prints its path.

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
