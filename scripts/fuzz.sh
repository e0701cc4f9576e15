#!/usr/bin/env bash
# fuzz.sh: coverage-guided fuzzing of one target with cargo-fuzz
# (libFuzzer), on the stable toolchain (no sanitizer).
#
# Usage: scripts/fuzz.sh TARGET SECONDS
#   TARGET: handle (proto::handle on any bytes), zone (zone files),
#           config (the configuration parser)
#
# Seeds and the regression corpus are in tests/data/fuzz/TARGET/ (the
# integration tests replay them). The working corpus grows in
# fuzz/corpus/TARGET/. A crash is minimised and copied into
# tests/data/fuzz/TARGET/ as crash-*; commit it with the fix.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?usage: scripts/fuzz.sh TARGET SECONDS}
seconds=${2:?usage: scripts/fuzz.sh TARGET SECONDS}
case "$target" in handle|zone|config) ;; *) echo "unknown target $target" >&2; exit 2 ;; esac
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz
seeds=tests/data/fuzz/$target
corpus=fuzz/corpus/$target
mkdir -p "$corpus" "fuzz/artifacts/$target"
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
