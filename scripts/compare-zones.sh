#!/usr/bin/env bash
# compare-zones.sh: check that lbdns reads zone files into the same records
# as BIND 9 does.
#
# Usage: scripts/compare-zones.sh [options] [ORIGIN=FILE ...]
#
#   ORIGIN=FILE     a zone to compare (default: the zones of compare-peers.sh,
#                   tests/data/zones/, tests/data/generate/generate.zone,
#                   tests/data/bind/*.zone and the bundled example)
#   --random N      also compare N zone files written by scripts/random-syntax.py
#                   (seeds S to S+N-1), in the many forms of master-file syntax
#                   BIND reads; each is kept in DIR/random/
#   --seed S        the first seed for --random (default 1)
#   --strict        exit 3 when lbdns and BIND differ on any zone
#   --no-install    do not apt-get install BIND's tools (bind9-utils) when missing
#   -o DIR          write each zone's records, as each read them, to DIR
#                   (default target/compare-zones)
#   -h, --help      this text
#
# Environment:
#   LBDNS           lbdns binary (default target/release/lbdns, then
#                   target/debug/lbdns, under $CARGO_TARGET_DIR if set)
#
# For each zone, BIND's `named-compilezone -D` writes the zone as BIND read
# it: absolute names, TTLs in seconds, each type's data in BIND's own text.
# lbdns then reads both files, the original and BIND's, and prints each
# with `check --print`; the two sorted lists of records must be equal. So
# the original file's syntax (relative names, `@`, `$TTL`, `$INCLUDE`,
# `$GENERATE`, TTL units, type mnemonics, each type's text) is checked
# against BIND's reading of it, record by record. No server is started and
# nothing is sent on the network.
#
# Exit status: 0 normally (differences alone do not fail the run); 1 when a
# tool is missing or a zone does not load; 3 with --strict as above.

set -euo pipefail

CALLER_PWD=$PWD
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=scripts/lib-peers.sh
. scripts/lib-peers.sh

log() { echo "compare-zones: $*" >&2; }
die() { log "error: $*"; exit 1; }
usage() { sed -n '2,/^$/{s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }

STRICT=0
INSTALL=1
RANDOM_N=0
SEED=1
OUT=target/compare-zones
ZONES=()
while [ $# -gt 0 ]; do
    case "$1" in
        --strict) STRICT=1; shift ;;
        --random) [ $# -ge 2 ] || die "--random needs a count"; RANDOM_N=$2; shift 2 ;;
        --seed) [ $# -ge 2 ] || die "--seed needs a number"; SEED=$2; shift 2 ;;
        --no-install) INSTALL=0; shift ;;
        -o) [ $# -ge 2 ] || die "-o needs a folder"; OUT=$(from_caller "$2"); shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *=*) ZONES+=("${1%%=*}=$(from_caller "${1#*=}")"); shift ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done
if [ ${#ZONES[@]} -eq 0 ]; then
    ZONES=(
        "example.com.=$ROOT/tests/data/zones/example.com.zone"
        "sub.example.com.=$ROOT/tests/data/zones/sub.example.com.zone"
        "example.com.=$ROOT/tests/data/generate/generate.zone"
        "example.com.=$ROOT/tests/data/bind/bind-style.zone"
        "example.com.=$ROOT/tests/data/bind/types.zone"
        "example.com.=$ROOT/examples/zones/example.com.zone"
    )
fi

# named-compilezone lives in /usr/sbin or /usr/bin, depending on the release.
export PATH="$PATH:/usr/sbin:/sbin"
if ! command -v named-compilezone >/dev/null 2>&1; then
    [ "$INSTALL" = 1 ] || die "named-compilezone is missing (bind9-utils; --no-install given)"
    apt_install bind9-utils
    command -v named-compilezone >/dev/null 2>&1 || die "named-compilezone still missing after apt-get install"
fi

LBDNS_BIN=${LBDNS:-}
if [ -n "$LBDNS_BIN" ]; then
    LBDNS_BIN=$(from_caller "$LBDNS_BIN")
else
    tdir=${CARGO_TARGET_DIR:-target}
    for c in "$tdir/release/lbdns" "$tdir/debug/lbdns"; do
        if [ -x "$c" ]; then LBDNS_BIN=$ROOT/$c; break; fi
    done
fi
case "$LBDNS_BIN" in "" | */) die "no lbdns binary: build it or set LBDNS" ;; esac
[ -x "$LBDNS_BIN" ] || die "$LBDNS_BIN is not an executable file"

mkdir -p "$OUT"
case "$OUT" in /*) ;; *) OUT="$ROOT/$OUT" ;; esac

case "$RANDOM_N$SEED" in *[!0-9]*) die "--random and --seed need numbers" ;; esac
if [ "$RANDOM_N" -gt 0 ]; then
    rm -rf "$OUT/random"
    mkdir -p "$OUT/random"
    for ((s = SEED; s < SEED + RANDOM_N; s++)); do
        python3 scripts/random-syntax.py "$s" >"$OUT/random/syntax-$s.zone"
        ZONES+=("example.com.=$OUT/random/syntax-$s.zone")
    done
fi

# The records lbdns reads from a file, one per line, sorted.
lbdns_records() { # origin file out
    "$LBDNS_BIN" check --zone "$1=$2" --print 2>"$3.log" | grep -v '^;' | LC_ALL=C sort >"$3" ||
        { cat "$3.log" >&2; return 1; }
}

differ=0
n=0
for zone in "${ZONES[@]}"; do
    origin=${zone%%=*}
    file=${zone#*=}
    [ -f "$file" ] || die "no zone file $file"
    n=$((n + 1))
    name="$n-$(basename "$file")"
    # BIND reads $INCLUDE relative to its working folder: the file's own.
    # Check names and the integrity checks are off: they are BIND's policy,
    # not its reading of the file.
    if ! (cd "$(dirname "$file")" &&
        named-compilezone -i none -k ignore -D -o "$OUT/$name.bind" "$origin" "$(basename "$file")") \
        >"$OUT/$name.bind.log" 2>&1; then
        cat "$OUT/$name.bind.log" >&2
        die "BIND did not load $file"
    fi
    lbdns_records "$origin" "$file" "$OUT/$name.lbdns.txt" || die "lbdns did not load $file"
    lbdns_records "$origin" "$OUT/$name.bind" "$OUT/$name.bind.txt" || die "lbdns did not load BIND's dump of $file"
    count=$(wc -l <"$OUT/$name.lbdns.txt")
    if diff -u "$OUT/$name.bind.txt" "$OUT/$name.lbdns.txt" >"$OUT/$name.diff"; then
        log "$file ($origin): the same $count records as BIND"
        rm -f "$OUT/$name.diff"
    else
        differ=$((differ + 1))
        log "$file ($origin): lbdns and BIND differ (- BIND, + lbdns):"
        cat "$OUT/$name.diff" >&2
    fi
done

named_version=$(named-compilezone -v 2>/dev/null || true)
log "$n zone(s) compared with BIND ${named_version:-?}; $differ differ. Records in $OUT"
if [ "$STRICT" = 1 ] && [ "$differ" -gt 0 ]; then
    exit 3
fi
