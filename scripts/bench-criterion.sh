#!/usr/bin/env bash
# bench-criterion.sh: the criterion benchmarks of the answer path.
#
# Usage: scripts/bench-criterion.sh [criterion args, e.g. a filter]
# HTML reports: target/criterion/report/index.html
set -euo pipefail
cd "$(dirname "$0")/.."
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(uname -r)"
cargo bench --bench answer --bench select --bench stages -- "$@"
echo "HTML report: target/criterion/report/index.html"
