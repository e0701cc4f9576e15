#!/usr/bin/env bash
# peer-ratios.sh: pools the paired rounds of several bench-peers runs.
#
# Usage: scripts/peer-ratios.sh RESULTS.csv...
#
# Each RESULTS.csv is a bench-peers results file (one line per run:
# round,mode,server,qps,avg_ms,lost,cpu_pct,us_per_answer). Within a file,
# each server's run is paired with lbdns's in the same round and mode; the
# ratio is the server's CPU per answer over lbdns's (above 1: the server
# costs more). Per mode and server it prints how many paired rounds there
# are over all the files, in how many lbdns cost less, the median, lower
# and upper quartile of the ratios, a 95 % confidence interval for the
# median (from the order statistics, which assumes nothing about the
# distribution), and the two-sided sign-test p-value of "lbdns is cheaper
# in half the rounds": a small p (under 0.05) says one of the two is
# really cheaper; a large one, that these rounds cannot tell them apart.
set -euo pipefail
if [ $# -eq 0 ]; then sed -n '2,16p' "$0"; exit 2; fi
for file in "$@"; do
  awk -F, 'NR > 1 { u[$1 "," $2 "," $3] = $8; if ($3 == "lbdns") base[$1 "," $2] = $8 }
    END {
      for (k in u) {
        split(k, a, ",")
        b = base[a[1] "," a[2]]
        if (a[3] != "lbdns" && b > 0) printf "%s %s %.5f\n", a[2], a[3], u[k] / b
      }
    }' "$file"
done | sort -k1,1 -k2,2 -k3,3g | awk '
  function flush(   k, pmf, cdf, lo, j, tail, p) {
    if (n == 0) return
    # Binomial(n, 1/2): the largest k with P(X <= k - 1) <= 0.025 gives the
    # interval [v[k], v[n - k + 1]]; the tails give the sign test.
    pmf = 0.5 ^ n; cdf = 0; k = 0
    for (j = 0; j <= n; j++) {
      bin[j] = pmf
      if (cdf + pmf <= 0.025) k = j + 1
      cdf += pmf
      pmf = pmf * (n - j) / (j + 1)
    }
    tail = 0
    for (j = 0; j <= n; j++) if (j <= cheaper) tail += bin[j]
    p = tail
    tail = 0
    for (j = 0; j <= n; j++) if (j >= cheaper) tail += bin[j]
    if (tail < p) p = tail
    p = 2 * p; if (p > 1) p = 1
    lo = k < 1 ? "-" : sprintf("%.3f-%.3f", v[k], v[n - k + 1])
    printf "%-10s %-11s %6d %14d %8.3f %8.3f %8.3f %13s %7.3f\n", mode, server, n, cheaper, q(0.5), q(0.25), q(0.75), lo, p
  }
  function q(p,   i, lo, f) {
    i = p * (n - 1) + 1; lo = int(i); f = i - lo
    return lo < n ? v[lo] + f * (v[lo + 1] - v[lo]) : v[lo]
  }
  BEGIN { printf "%-10s %-11s %6s %14s %8s %8s %8s %13s %7s\n", "mode", "server", "rounds", "lbdns cheaper", "median", "q1", "q3", "95% CI", "p" }
  $1 != mode || $2 != server { flush(); mode = $1; server = $2; n = 0; cheaper = 0 }
  { v[++n] = $3; if ($3 > 1) cheaper++ }
  END { flush() }'
