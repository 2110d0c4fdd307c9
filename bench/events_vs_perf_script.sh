#!/usr/bin/env bash
# Whole-process comparison on the same input: `lockanalyze events --format csv -o /dev/null`
# against `perf script -F comm,pid,tid,cpu,time,event,trace > /dev/null`, on the shared recording
# and on a copy ten times longer (same metadata, data repeated with shifted times). Prints the best
# of RUNS wall times, the ratio, and peak RSS. Goal (issue 2): at least 5x faster than perf script,
# and peak RSS that does not grow with the recording.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
lockanalyze=${LOCKANALYZE:-$top/build/bin/lockanalyze}
runs=${RUNS:-5}
cache=${LOCKSCOPE_CACHE:-/var/cache/lockscope}
shared=$("$top/tests/support/shared-recording")
longer="$cache/shared-x10.perf.data"
[ -s "$longer" ] || python3 "$top/bench/make_longer_recording.py" "$shared" "$longer" 10

# best wall seconds and largest RSS (KB) of $runs runs of a command whose stdout is discarded
measure() {
  local best=999999 rss=0 line t m out
  out=$(mktemp)
  for _ in $(seq "$runs"); do
    /usr/bin/time -o "$out" -f '%e %M' "$@" >/dev/null 2>/dev/null
    line=$(tail -n1 "$out")
    t=${line% *}; m=${line#* }
    best=$(awk -v a="$t" -v b="$best" 'BEGIN{print (a<b)?a:b}')
    ((m > rss)) && rss=$m
  done
  rm -f "$out"
  echo "$best $rss"
}

printf '%-24s %-12s %8s %12s\n' recording command best_s peak_rss_kb
for file in "$shared" "$longer"; do
  name=$(basename "$file" .perf.data)
  cat "$file" >/dev/null  # both start from a warm page cache
  read -r la_t la_m < <(measure "$lockanalyze" events --format csv -o /dev/null "$file")
  read -r ps_t ps_m < <(measure perf script -i "$file" -F comm,pid,tid,cpu,time,event,trace)
  printf '%-24s %-12s %8s %12s\n' "$name" lockanalyze "$la_t" "$la_m" "$name" "perf script" "$ps_t" "$ps_m"
  awk -v a="$ps_t" -v b="$la_t" -v n="$name" 'BEGIN{printf "%-24s speed-up over perf script: %.1fx\n", n, (b>0)?a/b:0}'
done
