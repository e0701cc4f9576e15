#!/usr/bin/env bash
# test.sh: the project's whole test suite — the command README.md gives
# and .ci/run calls.
#
#   1. formatting and lints: cargo fmt --check, cargo clippy -D warnings,
#      and the scripts through shellcheck (installed with apt-get when
#      missing; skipped with a warning only where it cannot be installed)
#   2. the criterion benches compile (they are not run), and `cargo run`
#      (the README's way to start the server) picks lbdns
#   3. conformance against NSD and Knot DNS: scripts/compare-peers.sh
#      --strict serves the test zones from all three on loopback and fails
#      on any difference not listed in tests/data/compare-expected-diffs.txt,
#      or in the records Knot and lbdns read from the zone files (installs
#      nsd, knot and dnsutils with apt-get when missing), then does the
#      same over three random zones (scripts/random-zone.py) and the
#      zones with NS at wildcards (tests/data/wildns); and
#      against BIND's reading of the zone files: scripts/compare-zones.sh
#      --strict, with 20 random ones from scripts/random-syntax.py
#      (installs bind9-utils when missing)
#   4. unit and integration tests (cargo nextest, or cargo test without it)
#
# Set LBDNS_SKIP_PEERS=1 to skip step 3 (e.g. offline).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --quiet -- -D warnings

step "shellcheck scripts/*.sh .ci/run"
if ! command -v shellcheck >/dev/null 2>&1; then
  # shellcheck source=scripts/lib-peers.sh
  . scripts/lib-peers.sh
  apt_install shellcheck
fi
if command -v shellcheck >/dev/null 2>&1; then
  shellcheck scripts/*.sh .ci/run
else
  echo "warning: shellcheck is not installed and could not be; scripts not linted" >&2
fi

step "benches compile"
cargo test --benches --no-run --quiet

# The README starts the server with `cargo run`, which needs to know
# which of the binaries to run (default-run).
step "cargo run starts lbdns"
cargo run --quiet -- --version | grep -q '^lbdns '

if [ "${LBDNS_SKIP_PEERS:-0}" = 1 ]; then
  step "peer comparison skipped (LBDNS_SKIP_PEERS=1)"
else
  step "conformance with NSD and Knot DNS"
  cargo build --quiet
  LBDNS=target/debug/lbdns scripts/compare-peers.sh --strict -q --random 400
  # Three random zones (scripts/random-zone.py), 200 random queries each.
  for zone in 1 2 3; do
    LBDNS=target/debug/lbdns scripts/compare-peers.sh --strict -q --random-zone "$zone" \
      --random 200 --seed "$zone" -o "target/compare-peers/random-zone-$zone/report.txt" |
      tail -n 1
  done
  # NS at wildcards, which BIND refuses, so they have zones of their own.
  LBDNS=target/debug/lbdns scripts/compare-peers.sh --strict -q --zones tests/data/wildns \
    --queries tests/data/wildns/queries.txt --expected tests/data/wildns/expected-diffs.txt \
    -o target/compare-peers/wildns/report.txt | tail -n 1
  step "zone files read as BIND reads them"
  LBDNS=target/debug/lbdns scripts/compare-zones.sh --strict --random 20 | tail -n 1
fi

step "tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --no-fail-fast
else
  cargo test --no-fail-fast
fi
