#!/usr/bin/env bash
# compare-peers.sh: ask lbdns, NSD and Knot DNS the same questions about the
# same zones on loopback and compare their answers.
#
# Usage: scripts/compare-peers.sh [options]
#
#   -o FILE            write the report to FILE (default target/compare-peers/report.txt);
#                      raw dig output and canonical answers go to FILE's folder, in raw/,
#                      and the servers' configs and logs in logs/
#   --strict           exit 3 when lbdns differs from both NSD and Knot on a query that
#                      tests/data/compare-expected-diffs.txt does not list, or reads other
#                      records from the zone files than Knot does (exit 2 when there is
#                      no lbdns binary to check)
#   --queries FILE     queries to send (default tests/data/compare-queries.txt)
#   --random N         also send N queries made up from the zones' owner names (with
#                      a label or two in front, letters in other case, or a label
#                      in place of a wildcard's `*`) and a mix
#                      of types and dig options; the whole list is written beside
#                      the report as queries.txt, for rerunning with --queries
#   --seed S           the seed for --random (default 1: the same queries each run)
#   --random-zone S    serve a random example.com. zone and its hosted child
#                      sub.example.com. from scripts/random-zone.py [--sub] S
#                      (written beside the report, in random-zone/) instead of --zones;
#                      without --queries, only the apex SOA and NS are asked besides
#                      --random's
#   --expected FILE    accepted lbdns differences (default tests/data/compare-expected-diffs.txt)
#   --zones DIR        folder with example.com.zone, sub.example.com.zone and
#                      included.inc (default tests/data/zones)
#   -q, --quiet        print only the queries where some servers disagree, and the summary
#   --no-install       do not apt-get install missing packages (nsd, knot, dnsutils)
#   --keep             keep the temporary folder (configs, server logs) and print its path
#   -h, --help         this text
#
# Environment:
#   LBDNS          lbdns binary (default target/release/lbdns, then target/debug/lbdns,
#                  under $CARGO_TARGET_DIR if that is set); with none, NSD and Knot are
#                  still compared and lbdns is reported as skipped
#   NSD_PORT, KNOT_PORT, LBDNS_PORT   UDP/TCP ports on 127.0.0.1 (5301, 5302, 5303)
#   READY_TIMEOUT  seconds to wait for each server to answer (default 15)
#
# Only 127.0.0.1 is ever sent queries. The servers run in their own sessions
# and are stopped on exit, whatever the exit path.
#
# Exit status: 0 normally (disagreements alone do not fail the run); 1 when a
# server or a tool could not be started; 2/3 with --strict as described above.

# shellcheck disable=SC2317,SC2009  # functions run from traps; ps --sid is intended
set -euo pipefail

CALLER_PWD=$PWD
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=scripts/lib-peers.sh
. scripts/lib-peers.sh

REPORT=target/compare-peers/report.txt
QUERIES=tests/data/compare-queries.txt
EXPECTED=tests/data/compare-expected-diffs.txt
ZONEDIR=tests/data/zones
STRICT=0
QUIET=0
INSTALL=1
KEEP=0
RANDOM_N=0
SEED=1
RANDOM_ZONE=
QUERIES_GIVEN=0
NSD_PORT=${NSD_PORT:-5301}
KNOT_PORT=${KNOT_PORT:-5302}
LBDNS_PORT=${LBDNS_PORT:-5303}
READY_TIMEOUT=${READY_TIMEOUT:-15}
ADDR=127.0.0.1 # the only address this script ever sends traffic to

log() { echo "compare-peers: $*" >&2; }
die() { log "error: $*"; exit 1; }
usage() { sed -n '2,/^$/{s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }

while [ $# -gt 0 ]; do
    case "$1" in
        -o) [ $# -ge 2 ] || die "-o needs a file"; REPORT=$(from_caller "$2"); shift 2 ;;
        -o*) REPORT=$(from_caller "${1#-o}"); shift ;;
        --strict) STRICT=1; shift ;;
        --queries) [ $# -ge 2 ] || die "--queries needs a file"; QUERIES=$(from_caller "$2"); QUERIES_GIVEN=1; shift 2 ;;
        --expected) [ $# -ge 2 ] || die "--expected needs a file"; EXPECTED=$(from_caller "$2"); shift 2 ;;
        --zones) [ $# -ge 2 ] || die "--zones needs a folder"; ZONEDIR=$(from_caller "$2"); shift 2 ;;
        --random) [ $# -ge 2 ] || die "--random needs a count"; RANDOM_N=$2; shift 2 ;;
        --seed) [ $# -ge 2 ] || die "--seed needs a number"; SEED=$2; shift 2 ;;
        --random-zone) [ $# -ge 2 ] || die "--random-zone needs a seed"; RANDOM_ZONE=$2; shift 2 ;;
        -q|--quiet) QUIET=1; shift ;;
        --no-install) INSTALL=0; shift ;;
        --keep) KEEP=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done

if [ -n "$RANDOM_ZONE" ]; then
    case "$RANDOM_ZONE" in ''|*[!0-9]*) die "--random-zone needs a number" ;; esac
    ZONEDIR="$(dirname "$REPORT")/random-zone"
    mkdir -p "$ZONEDIR"
    python3 scripts/random-zone.py "$RANDOM_ZONE" >"$ZONEDIR/example.com.zone"
    python3 scripts/random-zone.py --sub "$RANDOM_ZONE" >"$ZONEDIR/sub.example.com.zone"
    : >"$ZONEDIR/included.inc"
    if [ "$QUERIES_GIVEN" = 0 ]; then
        QUERIES="$ZONEDIR/queries.txt"
        printf 'example.com. SOA\nexample.com. NS\n' >"$QUERIES"
    fi
    log "serving the random zone $RANDOM_ZONE ($ZONEDIR/example.com.zone)"
fi
case "$ZONEDIR" in /*) ;; *) ZONEDIR="$ROOT/$ZONEDIR" ;; esac
for f in "$QUERIES" "$EXPECTED" "$ZONEDIR/example.com.zone" "$ZONEDIR/sub.example.com.zone" "$ZONEDIR/included.inc"; do
    [ -f "$f" ] || die "missing $f"
done

# --- state for cleanup -------------------------------------------------------
LOGDIR="$(dirname "$REPORT")/logs"
rm -rf "$LOGDIR"
TMPD=""
SERVER_PIDS=()   # reaper pids; each started with setsid: pid = process group = session id
SERVER_NAMES=()

# True while any process of session $1 is alive (zombies do not count).
session_alive() {
    ps -o stat= --sid "$1" 2>/dev/null | grep -qv '^Z'
}

stop_server() { # pid name
    local pid=$1 name=$2 i
    if session_alive "$pid"; then
        # SIGTERM to the reaper, which passes it to the server and waits for
        # the server and all its children; the whole group only if that stalls.
        kill -TERM "$pid" 2>/dev/null || true
        for i in $(seq 30); do session_alive "$pid" || break; sleep 0.1; done
        if session_alive "$pid"; then
            kill -TERM -- "-$pid" 2>/dev/null || true
            for i in $(seq 20); do session_alive "$pid" || break; sleep 0.1; done
        fi
        if session_alive "$pid"; then
            log "$name (pid $pid) ignored SIGTERM for 5 s; sending SIGKILL"
            kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
            for i in $(seq 20); do session_alive "$pid" || break; sleep 0.1; done
        fi
    fi
    wait "$pid" 2>/dev/null || true # reap our direct child
}

cleanup() {
    local rc=$? i
    set +e
    for i in "${!SERVER_PIDS[@]}"; do
        stop_server "${SERVER_PIDS[$i]}" "${SERVER_NAMES[$i]}"
    done
    if [ -n "$TMPD" ] && [ -d "$TMPD" ]; then
        # keep the server logs and configs next to the report
        if mkdir -p "$LOGDIR" 2>/dev/null; then
            cp "$TMPD"/nsd/nsd.conf "$TMPD"/nsd/nsd.log "$LOGDIR"/ 2>/dev/null
            cp "$TMPD"/knot/knot.conf "$TMPD"/knot/knot.log "$TMPD"/lbdns.log "$LOGDIR"/ 2>/dev/null
        fi
        if [ "$KEEP" = 1 ]; then log "kept $TMPD"; else rm -rf "$TMPD"; fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

# --- 1. tools ----------------------------------------------------------------
install_tools() {
    local missing=()
    command -v nsd >/dev/null 2>&1 || missing+=(nsd)
    command -v knotd >/dev/null 2>&1 || missing+=(knot)
    command -v dig >/dev/null 2>&1 || missing+=(dnsutils)
    command -v python3 >/dev/null 2>&1 || missing+=(python3)
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$INSTALL" = 1 ] || die "missing packages: ${missing[*]} (and --no-install given)"
    if [ "$(id -u)" != 0 ] && ! command -v sudo >/dev/null 2>&1; then
        die "missing packages ${missing[*]}; need root or sudo to install them"
    fi
    apt_install "${missing[@]}"
    local tool
    for tool in nsd knotd dig python3; do
        command -v "$tool" >/dev/null || die "$tool still missing after apt-get install"
    done
}
# nsd and knotd live in /usr/sbin, which a user's PATH may lack.
export PATH="$PATH:/usr/sbin:/sbin"
install_tools

# --- lbdns binary --------------------------------------------------------------
LBDNS_BIN=""
LBDNS_WHY=""
if [ -n "${LBDNS:-}" ]; then
    [ -x "$(from_caller "$LBDNS")" ] || die "LBDNS=$LBDNS is not an executable file"
    LBDNS_BIN=$(from_caller "$LBDNS")
else
    tdir=${CARGO_TARGET_DIR:-target}
    for c in "$tdir/release/lbdns" "$tdir/debug/lbdns"; do
        if [ -x "$c" ]; then LBDNS_BIN=$c; break; fi
    done
    [ -n "$LBDNS_BIN" ] || LBDNS_WHY="no binary at $tdir/release/lbdns or $tdir/debug/lbdns (set LBDNS or build it)"
fi
if [ -n "$LBDNS_BIN" ]; then
    case "$LBDNS_BIN" in /*) ;; *) LBDNS_BIN="$ROOT/$LBDNS_BIN" ;; esac
fi

# --- 2. configs ------------------------------------------------------------------
TMPD=$(mktemp -d "${TMPDIR:-/tmp}/compare-peers.XXXXXX")
chmod 755 "$TMPD"
mkdir -p "$TMPD/zones" "$TMPD/nsd" "$TMPD/knot/db"
# Copies: NSD opens $INCLUDE paths relative to its working folder (zonesdir),
# Knot relative to the zone file; with copies both find included.inc, and
# neither can ever write into the repo.
cp "$ZONEDIR/example.com.zone" "$ZONEDIR/sub.example.com.zone" "$ZONEDIR/included.inc" "$TMPD/zones/"
chmod -R a+rX "$TMPD"

cat >"$TMPD/nsd/nsd.conf" <<EOF
server:
    server-count: 1
    ip-address: $ADDR@$NSD_PORT
    do-ip4: yes
    do-ip6: no
    username: ""
    chroot: ""
    zonesdir: "$TMPD/zones"
    database: ""
    zonelistfile: "$TMPD/nsd/zone.list"
    xfrdfile: "$TMPD/nsd/xfrd.state"
    xfrdir: "$TMPD/nsd"
    pidfile: "$TMPD/nsd/nsd.pid"
    verbosity: 1
    hide-version: no
    version: "compare-version"
    hide-identity: no
    identity: "compare-peers"
    nsid: "ascii_compare-peers"
    minimal-responses: yes
    refuse-any: no
    round-robin: no
    zonefiles-check: yes
    zonefiles-write: 0
EOF
# RRL off (it is a compile-time option; the lines are dropped below if this
# nsd does not accept them).
printf '    rrl-ratelimit: 0\n    rrl-whitelist-ratelimit: 0\n' >>"$TMPD/nsd/nsd.conf"
cat >>"$TMPD/nsd/nsd.conf" <<EOF

remote-control:
    control-enable: no

zone:
    name: "example.com."
    zonefile: "$TMPD/zones/example.com.zone"

zone:
    name: "sub.example.com."
    zonefile: "$TMPD/zones/sub.example.com.zone"
EOF
if ! nsd-checkconf "$TMPD/nsd/nsd.conf" >"$TMPD/nsd/checkconf.log" 2>&1; then
    # maybe RRL is not compiled in after all: drop those lines and retry
    sed -i '/rrl-/d' "$TMPD/nsd/nsd.conf"
    nsd-checkconf "$TMPD/nsd/nsd.conf" >"$TMPD/nsd/checkconf.log" 2>&1 \
        || { cat "$TMPD/nsd/checkconf.log" >&2; die "nsd-checkconf rejected the NSD config"; }
fi

cat >"$TMPD/knot/knot.conf" <<EOF
server:
    rundir: "$TMPD/knot"
    pidfile: "$TMPD/knot/knot.pid"
    user: $(id -un):$(id -gn)
    listen: $ADDR@$KNOT_PORT
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
    identity: "compare-peers"
    version: "compare-version"
    nsid: "compare-peers"

log:
  - target: stderr
    any: info

database:
    storage: "$TMPD/knot/db"

template:
  - id: default
    storage: "$TMPD/zones"
    semantic-checks: off
    zonefile-load: whole
    zonefile-sync: -1
    journal-content: none

zone:
  - domain: example.com.
    file: "$TMPD/zones/example.com.zone"
  - domain: sub.example.com.
    file: "$TMPD/zones/sub.example.com.zone"
EOF
if command -v knotc >/dev/null 2>&1; then
    knotc -c "$TMPD/knot/knot.conf" conf-check >"$TMPD/knot/checkconf.log" 2>&1 \
        || { cat "$TMPD/knot/checkconf.log" >&2; die "knotc conf-check rejected the Knot config"; }
fi

# --- start and wait ------------------------------------------------------------------
cat >"$TMPD/reaper.py" <<'PYEOF'
import ctypes, os, signal, sys
PR_SET_CHILD_SUBREAPER = 36
try:
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
except Exception:
    pass
child = os.fork()
if child == 0:
    try:
        os.execvp(sys.argv[1], sys.argv[1:])
    finally:
        os._exit(127)
def forward(sig, _frame):
    try:
        os.kill(child, sig)
    except ProcessLookupError:
        pass
for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(s, forward)
status = 1
while True:
    try:
        pid, st = os.wait()
    except ChildProcessError:
        break
    if pid == child:
        status = os.waitstatus_to_exitcode(st)
sys.exit(status if status >= 0 else 128 - status)
PYEOF

port_busy() { # port: does anything answer DNS there already?
    dig @"$ADDR" -p "$1" +time=1 +tries=1 +norec +nocookie . SOA >/dev/null 2>&1
}

start_server() { # name port logfile cmd...
    local name=$1 port=$2 logf=$3
    shift 3
    port_busy "$port" && die "$name: something already answers on $ADDR port $port"
    # setsid: own session and process group, so stop_server can end the whole
    # group. (In this non-interactive shell the child is no group leader, so
    # setsid does not fork and $! is the reaper below.) The reaper runs the
    # server as its child, forwards SIGTERM/SIGINT/SIGHUP to it and, being a
    # child subreaper, also reaps the server's orphaned children: NSD's main
    # process can exit before its server child, and pid 1 here does not reap.
    setsid python3 "$TMPD/reaper.py" "$@" >"$logf" 2>&1 </dev/null &
    SERVER_PIDS+=("$!")
    SERVER_NAMES+=("$name")
}

wait_ready() { # name port pid logfile
    local name=$1 port=$2 pid=$3 logf=$4 deadline out ok z
    deadline=$((SECONDS + READY_TIMEOUT))
    while :; do
        if ! session_alive "$pid"; then
            log "$name exited during startup; last lines of $logf:"
            tail -n 20 "$logf" >&2 || true
            return 1
        fi
        ok=1
        for z in example.com. sub.example.com.; do
            out=$(dig @"$ADDR" -p "$port" +time=1 +tries=1 +norec +nocookie "$z" SOA 2>&1) || true
            if ! grep -q 'status: NOERROR' <<<"$out" || ! grep -q '^;; flags:[^;]* aa' <<<"$out"; then
                ok=0
                break
            fi
        done
        [ "$ok" = 1 ] && return 0
        if [ "$SECONDS" -ge "$deadline" ]; then
            log "$name did not answer SOA for both zones on $ADDR#$port within ${READY_TIMEOUT}s; last lines of $logf:"
            tail -n 20 "$logf" >&2 || true
            return 1
        fi
        sleep 0.2
    done
}

NSD_VER=$(nsd -v 2>&1 | head -n1 || true)
KNOT_VER=$(knotd -V 2>&1 | head -n1 || true)

start_server nsd "$NSD_PORT" "$TMPD/nsd/nsd.log" nsd -d -c "$TMPD/nsd/nsd.conf"
NSD_PID=${SERVER_PIDS[-1]}
start_server knot "$KNOT_PORT" "$TMPD/knot/knot.log" knotd -c "$TMPD/knot/knot.conf"
KNOT_PID=${SERVER_PIDS[-1]}
LBDNS_PID=""
if [ -n "$LBDNS_BIN" ]; then
    # The same identity, version and name server identifier on all three
    # (RFC 4892, RFC 5001).
    printf '[server]\nnsid = "compare-peers"\nidentity = "compare-peers"\nversion = "compare-version"\n' \
        >"$TMPD/lbdns.toml"
    start_server lbdns "$LBDNS_PORT" "$TMPD/lbdns.log" "$LBDNS_BIN" serve \
        --config "$TMPD/lbdns.toml" \
        --listen "$ADDR:$LBDNS_PORT" \
        --zone "example.com.=$ZONEDIR/example.com.zone" \
        --zone "sub.example.com.=$ZONEDIR/sub.example.com.zone"
    LBDNS_PID=${SERVER_PIDS[-1]}
fi

wait_ready nsd "$NSD_PORT" "$NSD_PID" "$TMPD/nsd/nsd.log" || die "NSD failed to start"
wait_ready knot "$KNOT_PORT" "$KNOT_PID" "$TMPD/knot/knot.log" || die "Knot failed to start"
if [ -n "$LBDNS_PID" ]; then
    wait_ready lbdns "$LBDNS_PORT" "$LBDNS_PID" "$TMPD/lbdns.log" || die "lbdns failed to start ($LBDNS_BIN)"
fi

# --- compare -----------------------------------------------------------------------
SERVER_ARGS=(--server "nsd=$NSD_PORT=$NSD_VER" --server "knot=$KNOT_PORT=$KNOT_VER")
if [ -n "$LBDNS_PID" ]; then
    SERVER_ARGS+=(--server "lbdns=$LBDNS_PORT=$LBDNS_BIN")
else
    SERVER_ARGS+=(--skipped "lbdns=$LBDNS_WHY")
fi
EXTRA=()
[ "$STRICT" = 1 ] && EXTRA+=(--strict)
[ "$QUIET" = 1 ] && EXTRA+=(--quiet)

cat >"$TMPD/compare.py" <<'PYEOF'
"""Run the queries against each server with dig, canonicalize, compare, report."""
import argparse
import concurrent.futures
import datetime
import difflib
import os
import re
import shutil
import subprocess
import sys

ADDR = "127.0.0.1"
# Sent first with every query; a line's own options follow and win.
BASE_OPTS = ["+norec", "+notcp", "+nocookie", "+nonsid", "+ignore", "+noednsneg",
             "+time=1", "+tries=2"]
SHOW_OPTS = ["+nocmd", "+noall", "+comments", "+question", "+answer",
             "+authority", "+additional", "+nottlunits", "+nomultiline",
             "+norrcomments", "+nosplit", "+stats"]
FLAG_ORDER = ["qr", "aa", "tc", "rd", "ra", "ad", "cd"]
# Types whose rdata holds domain names only (plus numbers): safe to lower-case.
NAME_RDATA = {"CNAME", "NS", "PTR", "DNAME", "MX", "SOA", "SRV", "RP", "AFSDB",
              "KX", "NAPTR", "MINFO", "MB", "MG", "MR", "PX", "RT", "NSAP-PTR"}
# NSID is compared: all three servers are given the same one.
IGNORED_OPT = ("COOKIE", "PAD", "PADDING")
SECTIONS = ("ANSWER", "AUTHORITY", "ADDITIONAL")


def parse_queries(path):
    out = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            s = line.split("#", 1)[0].strip()
            if not s:
                continue
            tok = s.split()
            if len(tok) < 2:
                sys.exit(f"{path}:{lineno}: need NAME TYPE [dig options...]: {line.rstrip()}")
            out.append({"name": tok[0], "type": tok[1], "opts": tok[2:],
                        "label": " ".join(tok), "line": lineno})
    return out


def parse_expected(path):
    out = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            spec, _, reason = line.partition("#")
            tok = spec.split()
            if len(tok) < 2:
                sys.exit(f"{path}:{lineno}: need NAME TYPE [dig options...] # reason")
            out.append({"name": tok[0].lower(), "type": tok[1].upper(),
                        "opts": tok[2:], "reason": reason.strip(), "line": lineno})
    return out


def expected_reason(q, expected):
    for e in expected:
        if e["name"] == q["name"].lower() and e["type"] == q["type"].upper() \
                and (not e["opts"] or e["opts"] == q["opts"]):
            return e["reason"] or "(listed, no reason given)"
    return None


def run_dig(port, q):
    cmd = (["dig", "@" + ADDR, "-p", str(port)] + SHOW_OPTS + BASE_OPTS + q["opts"]
           + ["-q", q["name"], "-t", q["type"]])
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
        return cmd, p.returncode, p.stdout + p.stderr
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        return cmd, -1, out + "\n;; compare-peers: dig did not finish in 20 s\n"


def canon_rr(line):
    parts = line.split(None, 4)
    if len(parts) < 4:
        return "?? " + " ".join(line.split())
    name, ttl, cls, rtype = parts[:4]
    rdata = parts[4].strip() if len(parts) > 4 else ""
    if rtype.upper() in NAME_RDATA:
        rdata = rdata.lower()
    return f"{name.lower()} {ttl} {cls.upper()} {rtype.upper()} {rdata}".rstrip()


def canonicalize(rc, text):
    """Turn dig output into a stable text: what a server said, not how dig printed it."""
    opcode = rcode = None
    flags = None
    edns = None
    ednsopts = []
    question = []
    transport = None
    sections = {s: [] for s in SECTIONS}
    notes = []
    cur = None
    in_opt = False
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line.strip():
            cur = None
            in_opt = False
            continue
        m = re.match(r";; ->>HEADER<<- opcode: ([^,]+), status: ([^,]+), id:", line)
        if m:
            opcode, rcode = m.group(1).strip(), m.group(2).strip()
            continue
        m = re.match(r";; flags:([^;]*);", line)
        if m:
            fl = m.group(1).split()
            flags = sorted(fl, key=lambda x: (FLAG_ORDER.index(x) if x in FLAG_ORDER else 99, x))
            continue
        if line.startswith(";; OPT PSEUDOSECTION:"):
            in_opt = True
            cur = None
            continue
        m = re.match(r";; (QUESTION|ANSWER|AUTHORITY|ADDITIONAL) SECTION:", line)
        if m:
            cur = m.group(1)
            in_opt = False
            continue
        if in_opt and line.startswith("; "):
            body = line[2:]
            key = body.split(":", 1)[0].strip().upper()
            if key == "EDNS":
                edns = " ".join(body.split(":", 1)[1].split())
            elif key in IGNORED_OPT:
                pass
            else:
                ednsopts.append(" ".join(body.split()))
            continue
        if cur == "QUESTION" and line.startswith(";"):
            f = line[1:].split()
            if len(f) >= 3:
                question.append(f"{f[0].lower()} {f[1].upper()} {f[2].upper()}")
            else:
                question.append(" ".join(f).lower())
            continue
        if cur in SECTIONS and not line.startswith(";"):
            sections[cur].append(canon_rr(line))
            continue
        m = re.match(r";; SERVER: .*\((UDP|TCP|TLS|HTTPS)\)\s*$", line)
        if m:
            transport = m.group(1)  # what dig really used (it sends ANY over TCP unless +notcp)
            continue
        if line.startswith(";; WARNING") or line.startswith(";; Got answer"):
            continue
        low = line.lower()
        if "timed out" in low or "no servers could be reached" in low:
            notes.append("error: timeout")
        elif "connection refused" in low:
            notes.append("error: connection refused")
        elif "malformed" in low or "formerr" in low or "warning" in low:
            notes.append(" ".join(line.lstrip(";").split()))
        elif line.startswith(";;") and ("error" in low or "reset" in low or "eof" in low):
            notes.append(" ".join(line.lstrip(";").split()))
        # other comment lines (timings, server, sizes) are ignored
    out = []
    if opcode is None:
        out.append("no response")
        out.append(f"dig exit: {rc}")
    else:
        out.append(f"transport: {transport or '?'}")
        out.append(f"opcode: {opcode}")
        out.append(f"rcode: {rcode}")
        out.append("flags: " + " ".join(flags or []))
        out.append("edns: " + (edns if edns is not None else "none"))
        for o in ednsopts:
            out.append("edns-option: " + o)
        out.append("question: " + ("; ".join(question) if question else "none"))
        if "tc" in (flags or []):
            # What a truncated reply holds depends on how well a server
            # compresses names; the client asks again over TCP (RFC 2181
            # §9). Its header is compared, its records are not (they are
            # in raw/).
            out.append("records: not compared (truncated)")
        else:
            for s in SECTIONS:
                out.append(s.lower() + ":")
                for r in sorted(sections[s]):
                    out.append("  " + r)
    for n in dict.fromkeys(notes):
        out.append(n)
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--queries", required=True)
    ap.add_argument("--expected", required=True)
    ap.add_argument("--report", required=True)
    ap.add_argument("--server", action="append", default=[], help="name=port=description")
    ap.add_argument("--skipped", action="append", default=[], help="name=why")
    ap.add_argument("--strict", action="store_true")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args()

    servers = []
    for s in a.server:
        name, port, desc = s.split("=", 2)
        servers.append((name, int(port), desc))
    names = [s[0] for s in servers]
    have_lbdns = "lbdns" in names
    queries = parse_queries(a.queries)
    expected = parse_expected(a.expected)

    report_dir = os.path.dirname(os.path.abspath(a.report))
    raw_dir = os.path.join(report_dir, "raw")
    os.makedirs(report_dir, exist_ok=True)
    shutil.rmtree(raw_dir, ignore_errors=True)
    os.makedirs(raw_dir)

    jobs = [(i, name, port) for i in range(len(queries)) for (name, port, _) in servers]
    results = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=6) as ex:
        futs = {ex.submit(run_dig, port, queries[i]): (i, name) for (i, name, port) in jobs}
        for fut in concurrent.futures.as_completed(futs):
            i, name = futs[fut]
            cmd, rc, out = fut.result()
            canon = canonicalize(rc, out)
            results[(i, name)] = canon
            base = os.path.join(raw_dir, f"{i + 1:03d}-{name}")
            with open(base + ".dig", "w", encoding="utf-8") as f:
                f.write("; " + " ".join(cmd) + "\n" + out)
            with open(base + ".canon", "w", encoding="utf-8") as f:
                f.write(f"; {queries[i]['label']}\n" + canon)

    pairs = [("nsd", "knot")]
    if have_lbdns:
        pairs = [("lbdns", "nsd"), ("lbdns", "knot"), ("nsd", "knot")]
    agree = {p: 0 for p in pairs}
    width = min(48, max(len(q["label"]) for q in queries) + 1)
    table = []
    details = []
    unexpected = []
    listed_diffs = []
    for i, q in enumerate(queries):
        r = {n: results[(i, n)] for n in names}
        same = {p: r[p[0]] == r[p[1]] for p in pairs}
        for p in pairs:
            agree[p] += same[p]
        mark = " "
        note = ""
        if have_lbdns and not same[("lbdns", "nsd")] and not same[("lbdns", "knot")]:
            reason = expected_reason(q, expected)
            if reason is None:
                mark = "*"
                unexpected.append(q)
            else:
                mark = "e"
                note = "  (expected: " + reason + ")"
                listed_diffs.append(q)
        cols = "  ".join(f"{p[0]}{'=' if same[p] else '!='}{p[1]}".ljust(len(p[0]) + len(p[1]) + 2)
                         for p in pairs)
        all_same = all(same.values())
        table.append((all_same, f"{mark}{i + 1:3d}  {q['label'].ljust(width)} {cols}{note}"))
        if all_same:
            continue
        # group the servers by identical answers; diff every group against the first
        order = (["lbdns"] if have_lbdns else []) + ["nsd", "knot"]
        groups = []
        for n in order:
            for g in groups:
                if r[g[0]] == r[n]:
                    g.append(n)
                    break
            else:
                groups.append([n])
        d = [f"### [{i + 1}] {q['label']}   ({a.queries} line {q['line']})",
             "groups: " + " | ".join("=".join(g) for g in groups)]
        ref = groups[0]
        for g in groups[1:]:
            d.extend(difflib.unified_diff(
                r[ref[0]].splitlines(), r[g[0]].splitlines(),
                fromfile="/".join(ref), tofile="/".join(g), lineterm="", n=20))
        details.append("\n".join(d))

    head = [
        "lbdns / NSD / Knot DNS answer comparison (scripts/compare-peers.sh)",
        "date: " + datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S"),
        "queries: " + a.queries + f" ({len(queries)})",
        "expected diffs: " + a.expected + f" ({len(expected)} entries)",
        "dig options on every query: " + " ".join(BASE_OPTS),
    ]
    for (name, port, desc) in servers:
        head.append(f"server {name}: {ADDR}#{port}  {desc}")
    for s in a.skipped:
        name, _, why = s.partition("=")
        head.append(f"server {name}: SKIPPED: {why}")
    head.append("")
    head.append("'*' = lbdns differs from both peers and the query is not in the expected-diffs file;"
                if have_lbdns else "lbdns skipped: only NSD and Knot are compared")
    if have_lbdns:
        head.append("'e' = lbdns differs from both peers, listed as expected")
    head.append("")

    if have_lbdns:
        summary = (f"compare: {len(queries)} queries, lbdns=nsd {agree[('lbdns', 'nsd')]}, "
                   f"lbdns=knot {agree[('lbdns', 'knot')]}, nsd=knot {agree[('nsd', 'knot')]}")
        if unexpected or listed_diffs:
            summary += (f"; lbdns differs from both on {len(unexpected) + len(listed_diffs)}"
                        f" ({len(unexpected)} unexpected)")
    else:
        summary = (f"compare: {len(queries)} queries, lbdns skipped, "
                   f"nsd=knot {agree[('nsd', 'knot')]}")

    full = head + [t for _, t in table] + ["", "=== disagreements ===", ""]
    full += (details if details else ["(none)"])
    full += ["", summary]
    with open(a.report, "w", encoding="utf-8") as f:
        f.write("\n".join(full) + "\n")

    if a.quiet:
        shown = head + [t for ok, t in table if not ok] + [""] + details + ["", summary]
    else:
        shown = full
    print("\n".join(shown))
    print(f"compare-peers: report written to {a.report}; raw dig output in {raw_dir}/", file=sys.stderr)

    if a.strict:
        if not have_lbdns:
            print("compare-peers: --strict: no lbdns binary to check", file=sys.stderr)
            return 2
        if unexpected:
            print("compare-peers: --strict: lbdns differs from both NSD and Knot on:", file=sys.stderr)
            for q in unexpected:
                print("  " + q["label"], file=sys.stderr)
            print(f"(list accepted ones in {a.expected})", file=sys.stderr)
            return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
PYEOF

if [ "$RANDOM_N" -gt 0 ]; then
    # The fixed queries, then N made up from the zones (seeded: the same
    # list each run unless --seed changes).
    mkdir -p "$(dirname "$REPORT")"
    ALL="$(dirname "$REPORT")/queries.txt"
    python3 - "$QUERIES" "$ZONEDIR" "$RANDOM_N" "$SEED" >"$ALL" <<'GENEOF'
import random, sys
queries, zonedir, count, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
names = set()
for file, origin in (("example.com.zone", "example.com."), ("sub.example.com.zone", "sub.example.com.")):
    with open(f"{zonedir}/{file}", encoding="utf-8") as f:
        for line in f:
            tok = line.split(";", 1)[0].split()
            if not tok or line[0] in " \t(":
                continue
            if tok[0] == "$ORIGIN" and len(tok) > 1:
                origin = tok[1]
            if tok[0].startswith("$") or "\\" in tok[0]:
                continue
            name = origin if tok[0] == "@" else tok[0] if tok[0].endswith(".") else f"{tok[0]}.{origin}"
            names.add(name)
names = sorted(names)
types = ["A", "AAAA", "MX", "NS", "SOA", "TXT", "CNAME", "DNAME", "ANY", "SRV", "PTR", "DS", "CAA",
         "NSEC", "RRSIG", "DNSKEY", "HTTPS", "NAPTR", "SSHFP", "TYPE65280"]
# Not +cd, another opcode, -c ANY nor +subnet: lbdns differs from both peers
# there on purpose (tests/data/compare-expected-diffs.txt, and neither peer
# is set up for EDNS Client Subnet).
options = ["", "", "", "+noedns", "+tcp", "+bufsize=512", "+dnssec", "+norec",
           "+noedns +dnssec", "+dnssec +bufsize=512", "+nsid", "+edns=1", "-c CH",
           "+ednsflags=0x4000", "+bufsize=1232 +dnssec", "+tcp +dnssec"]
rng = random.Random(seed)
with open(queries, encoding="utf-8") as f:
    sys.stdout.write(f.read())
print(f"\n# --- {count} made up by compare-peers.sh --random {count} --seed {seed} ---")
for _ in range(count):
    name = rng.choice(names)
    # A name a wildcard stands in for, half the time a wildcard is drawn.
    if name.startswith("*.") and rng.random() < 0.5:
        name = f"w{rng.randint(0, 99)}{name[1:]}"
    r = rng.random()
    if r < 0.25:
        name = f"x{rng.randint(0, 9)}.{name}"
    elif r < 0.35:
        name = f"a.b.{name}"
    elif r < 0.45:
        name = "".join(c.upper() if rng.random() < 0.5 else c for c in name)
    print(f"{name} {rng.choice(types)} {rng.choice(options)}".rstrip())
GENEOF
    QUERIES=$ALL
    log "sending $RANDOM_N made-up queries too (seed $SEED); the list is $ALL"
fi

set +e
python3 "$TMPD/compare.py" --queries "$QUERIES" --expected "$EXPECTED" --report "$REPORT" \
    "${SERVER_ARGS[@]}" "${EXTRA[@]}"
PYRC=$?
set -e
if [ -n "$LBDNS_PID" ] && ! session_alive "$LBDNS_PID"; then
    log "warning: lbdns exited during the comparison; last lines of its log:"
    tail -n 20 "$TMPD/lbdns.log" >&2 || true
fi

# --- zone contents ----------------------------------------------------------------
# The answers above cover the queries asked; this covers every record. Knot
# prints each record it loaded (knotc zone-read); lbdns reads that text and
# its own reading of the files, prints both with `check --print`, and the
# sorted lists must be equal. (scripts/compare-zones.sh does the same with
# BIND; NSD's printer, nsd-checkzone -p, drops all but an SPF record's first
# string, so NSD is compared by its answers only.)
ZONE_RC=0
if [ -n "$LBDNS_BIN" ] && command -v knotc >/dev/null 2>&1; then
    zout="$(dirname "$REPORT")/zones"
    rm -rf "$zout"
    mkdir -p "$zout"
    records() { # origin file out: lbdns's records of a file, sorted
        "$LBDNS_BIN" check --zone "$1=$2" --print 2>"$3.log" | grep -v '^;' | LC_ALL=C sort >"$3"
    }
    for zone in example.com. sub.example.com.; do
        if ! knotc -c "$TMPD/knot/knot.conf" zone-read "$zone" >"$zout/${zone}knot.raw" 2>&1; then
            log "knotc zone-read $zone failed: $(head -n 3 "$zout/${zone}knot.raw")"
            ZONE_RC=1
            continue
        fi
        sed 's/^\[[^]]*\] //' "$zout/${zone}knot.raw" >"$zout/${zone}knot.zone"
        if ! records "$zone" "$zout/${zone}knot.zone" "$zout/${zone}knot.txt" ||
            ! records "$zone" "$TMPD/zones/${zone}zone" "$zout/${zone}lbdns.txt"; then
            log "lbdns could not read $zone (see $zout)"
            ZONE_RC=1
            continue
        fi
        if diff -u "$zout/${zone}knot.txt" "$zout/${zone}lbdns.txt" >"$zout/${zone}diff"; then
            log "zone $zone: lbdns reads the same $(wc -l <"$zout/${zone}lbdns.txt") records as Knot"
            rm -f "$zout/${zone}diff"
        else
            log "zone $zone: lbdns and Knot read different records (- Knot, + lbdns):"
            cat "$zout/${zone}diff" >&2
            ZONE_RC=3
        fi
    done
fi
if [ "$PYRC" = 0 ] && [ "$ZONE_RC" = 3 ] && [ "$STRICT" = 1 ]; then
    exit 3
fi
exit "$PYRC"
