#!/usr/bin/env bash
# Whole-process comparison on the shared recording with its 633 MB vmlinux: the full report
# (`lockanalyze FILE --vmlinux V`, DWARF work included) against `perf script -k V > /dev/null` and
# against the same report without --vmlinux, best of RUNS, and peak RSS of the report on the
# recording and on a copy ten times longer.
# Goals (issue 21): at least 4x faster than perf script -k, at most 2x the report without
# --vmlinux, peak RSS at most 150 MB (issue 4: RSS at most 1.2x on the longer copy).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
lockanalyze=${LOCKANALYZE:-$top/build/bin/lockanalyze}
runs=${RUNS:-3}
cache=${LOCKSCOPE_CACHE:-/var/cache/lockscope}
shared=$("$top/tests/support/shared-recording")
vmlinux=$("$top/tests/support/fetch-vmlinux")
# The same processes taking the same locks for ten times as long (their FORK/COMM/EXIT records
# are kept only in the first copy, so the pids are not reborn as new processes).
longer="$cache/shared-x10-samples.perf.data"
[ -s "$longer" ] || python3 "$top/bench/make_longer_recording.py" --samples-only "$shared" "$longer" 10

measure() {
  local best=999999 rss=0 line t m out
  out=$(mktemp)
  for _ in $(seq "$runs"); do
    /usr/bin/time -o "$out" -f '%e %M' "$@" >/dev/null 2>/dev/null
    line=$(tail -n1 "$out"); t=${line% *}; m=${line#* }
    best=$(awk -v a="$t" -v b="$best" 'BEGIN{print (a<b)?a:b}')
    ((m > rss)) && rss=$m
  done
  rm -f "$out"
  echo "$best $rss"
}
cat "$shared" "$vmlinux" >/dev/null
read -r la_t la_m < <(measure "$lockanalyze" "$shared" --vmlinux "$vmlinux")
read -r nv_t nv_m < <(measure "$lockanalyze" "$shared")
read -r ps_t ps_m < <(measure perf script -i "$shared" -k "$vmlinux")
read -r lx_t lx_m < <(measure "$lockanalyze" "$longer" --vmlinux "$vmlinux")
printf '%-34s %8s %12s\n' command best_s peak_rss_kb
printf '%-34s %8s %12s\n' "lockanalyze report" "$la_t" "$la_m" "lockanalyze report, no --vmlinux" "$nv_t" "$nv_m" \
  "perf script -k vmlinux" "$ps_t" "$ps_m" "lockanalyze report, 10x recording" "$lx_t" "$lx_m"
awk -v a="$ps_t" -v b="$la_t" -v n="$nv_t" -v m1="$la_m" -v m2="$lx_m" \
  'BEGIN{printf "speed-up over perf script: %.2fx (goal >= 4); report / report without --vmlinux: %.2f (goal <= 2); peak RSS %d KB (goal <= 153600); RSS 10x/1x: %.2f\n", a/b, b/n, m1, m2/m1}'
