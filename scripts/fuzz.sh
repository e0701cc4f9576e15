#!/usr/bin/env bash
# fuzz.sh: coverage-guided fuzzing of one target with cargo-fuzz
# (libFuzzer), on the stable toolchain (no sanitizer).
#
# Usage: scripts/fuzz.sh TARGET SECONDS
#        scripts/fuzz.sh merge TARGET
#   TARGET: handle (proto::handle on any bytes), zone (zone files),
#           config (the configuration parser)
#
# Seeds and the regression corpus are in tests/data/fuzz/TARGET/ (the
# integration tests replay them, so CI runs every input there). The
# working corpus grows in fuzz/corpus/TARGET/ (not committed). A crash is
# minimised and copied into tests/data/fuzz/TARGET/ as crash-*; commit it
# with the fix.
#
# `merge` copies into tests/data/fuzz/TARGET/ a small set of inputs of the
# working corpus that reach the code edges the inputs already there do not
# (libFuzzer -set_cover_merge=1, edges only), so that the tests replay what
# the fuzzer learned; commit them.
set -euo pipefail
cd "$(dirname "$0")/.."
usage="usage: scripts/fuzz.sh TARGET SECONDS, or scripts/fuzz.sh merge TARGET"
if [ "${1:-}" = merge ]; then
  mode=merge
  target=${2:?$usage}
else
  mode=fuzz
  target=${1:?$usage}
  seconds=${2:?$usage}
fi
case "$target" in handle|zone|config) ;; *) echo "unknown target $target" >&2; exit 2 ;; esac
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz
seeds=tests/data/fuzz/$target
corpus=fuzz/corpus/$target
mkdir -p "$corpus" "fuzz/artifacts/$target"
if [ "$mode" = merge ]; then
  before=$(find "$seeds" -type f | wc -l)
  (cd fuzz && cargo fuzz run -s none "$target" -- -set_cover_merge=1 -use_counters=0 \
    -max_len=4096 -timeout=10 \
    "../$seeds" "corpus/$target") 2>&1 | grep -E '^MERGE-OUTER: [0-9]+ new files' || true
  after=$(find "$seeds" -type f | wc -l)
  echo "fuzz: merged $((after - before)) inputs of $corpus into $seeds ($after in all)"
  exit 0
fi
marker=$(mktemp)
trap 'rm -f "$marker"' EXIT
cd fuzz
status=0
cargo fuzz run -s none "$target" "corpus/$target" "../$seeds" -- \
  -max_total_time="$seconds" -max_len=4096 -timeout=10 -print_final_stats=1 || status=$?
cd ..
found=0
for crash in fuzz/artifacts/"$target"/crash-* fuzz/artifacts/"$target"/timeout-* fuzz/artifacts/"$target"/oom-*; do
  # Only what this run found.
  if [ ! -e "$crash" ] || [ ! "$crash" -nt "$marker" ]; then continue; fi
  found=1
  base=$(basename "$crash")
  (cd fuzz && cargo fuzz tmin -s none "$target" "artifacts/$target/$base" -- -runs=2000) >/dev/null 2>&1 || true
  # The newest minimised input is this crash's (libFuzzer names them by hash).
  # shellcheck disable=SC2012
  minimized=$(ls -t fuzz/artifacts/"$target"/minimized-from-* 2>/dev/null | head -n1 || true)
  cp "${minimized:-$crash}" "$seeds/$base"
  echo "fuzz: $target found $base; minimised into $seeds/$base"
done
if [ "$found" = 0 ] && [ "$status" = 0 ]; then
  echo "fuzz: $target ran ${seconds}s without a crash; corpus: $(find "$corpus" -type f | wc -l) inputs"
fi
exit "$status"
