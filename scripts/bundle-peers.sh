#!/usr/bin/env bash
# bundle-peers.sh: packs this machine's knotd, nsd, gdnsd, taskset and perf
# (when installed, for bench-scale.sh --perf), with the shared libraries
# and the dynamic loader they run with, into DIR, so that the benchmarks
# can run them on a host that has no package manager or network (as
# bench-scale.sh did on a lent 16-CPU machine).
#
# Usage: scripts/bundle-peers.sh DIR
#
# DIR/bin holds one wrapper per program, which starts the real one
# (DIR/real) through the carried loader with DIR/lib as its only library
# path, so the host's own C library is never mixed in. Put DIR/bin first
# on PATH there:
#   PATH=$PWD/DIR/bin:$PATH BIN=DIR scripts/bench-scale.sh --servers "lbdns echo gdnsd nsd knot"
# where DIR also holds lbdns, lbdns-load and udp-echo (copied here from
# target/release, stripped, when present). Installs the peers with apt-get
# when missing. Needs ldd; the host must run the same architecture.
set -euo pipefail
CALLER_PWD=$PWD
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib-peers.sh
. scripts/lib-peers.sh

[ $# -eq 1 ] || { sed -n '2,17p' "$0"; exit 2; }
dir=$(from_caller "$1")
export PATH="$PATH:/usr/sbin:/sbin"
need=()
command -v knotd >/dev/null || need+=(knot)
command -v nsd >/dev/null || need+=(nsd)
command -v gdnsd >/dev/null || need+=(gdnsd)
apt_install ${need[@]+"${need[@]}"}

mkdir -p "$dir/bin" "$dir/real" "$dir/lib"
loader=
for prog in knotd nsd gdnsd taskset perf; do
  path=$(command -v "$prog") || { echo "skipping $prog: not installed" >&2; continue; }
  cp "$path" "$dir/real/$prog"
  # ldd prints "name => /path (address)" for libraries and "/path (address)"
  # for the loader.
  while read -r lib; do
    cp -L "$lib" "$dir/lib/"
  done < <(ldd "$path" | awk '$2 == "=>" && $3 ~ /^\// {print $3}')
  loader=$(ldd "$path" | awk '$1 ~ /^\/.*ld-linux/ {print $1}')
  cat >"$dir/bin/$prog" <<WRAP
#!/bin/sh
# $prog from the machine it was bundled on, with the libraries it was built against.
d=\$(dirname "\$(readlink -f "\$0")")/..
exec "\$d/lib/$(basename "$loader")" --library-path "\$d/lib" "\$d/real/$prog" "\$@"
WRAP
  chmod +x "$dir/bin/$prog"
done
[ -n "$loader" ] || { echo "nothing bundled" >&2; exit 1; }
cp -L "$loader" "$dir/lib/"
for b in lbdns lbdns-load udp-echo; do
  # Without debug information, but with the symbol table, so that a
  # profile there names lbdns's functions.
  [ ! -x "target/release/$b" ] || strip --strip-debug -o "$dir/$b" "target/release/$b"
done
echo "bundled into $dir ($(du -sh "$dir" | cut -f1)); run with PATH=$dir/bin:\$PATH BIN=$dir"
