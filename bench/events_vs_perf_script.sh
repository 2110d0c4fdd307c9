#!/usr/bin/env bash
# Whole-process comparison on the same input: `lockanalyze events --format csv -o /dev/null`
# against `perf script -F comm,pid,tid,cpu,time,event,trace` (output discarded), on a short cut of
# the shared recording (start-up cost), on the shared recording, and on a copy ten times longer
# (same metadata, data repeated with shifted times). Goal (issue 21): at least 8x faster than perf
# script, and peak RSS that does not grow with the recording.
#
# Times come from hyperfine (Debian package, installed by setup.sh), both commands in one run so
# they see the same machine load: min and median wall time of RUNS runs (RUNS_LONG on the longer
# copy) after warm-up runs. /usr/bin/time's 10 ms resolution is too coarse at these times. Peak RSS
# is the largest of 3 runs under /usr/bin/time.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
lockanalyze=${LOCKANALYZE:-$top/build/bin/lockanalyze}
runs=${RUNS:-40}
runs_long=${RUNS_LONG:-10}
cache=${LOCKSCOPE_CACHE:-/var/cache/lockscope}
command -v hyperfine >/dev/null || { echo "hyperfine is not installed (run setup.sh)" >&2; exit 1; }
shared=$("$top/tests/support/shared-recording")
longer="$cache/shared-x10.perf.data"
short="$cache/shared-64k.perf.data"
[ -s "$longer" ] || python3 "$top/bench/make_longer_recording.py" "$shared" "$longer" 10
[ -s "$short" ] || python3 "$top/bench/make_longer_recording.py" --keep-bytes 65536 "$shared" "$short" 1

# largest peak RSS (KB) of 3 runs of a command whose output is discarded
peak_rss() {
  local rss=0 m out
  out=$(mktemp)
  for _ in 1 2 3; do
    /usr/bin/time -o "$out" -f '%M' "$@" >/dev/null 2>/dev/null
    m=$(tail -n1 "$out")
    ((m > rss)) && rss=$m
  done
  rm -f "$out"
  echo "$rss"
}

json=$(mktemp)
trap 'rm -f "$json"' EXIT
printf '%-24s %-12s %9s %9s %12s\n' recording command min_s median_s peak_rss_kb
for file in "$short" "$shared" "$longer"; do
  name=$(basename "$file" .perf.data)
  n=$runs
  [ "$file" = "$longer" ] && n=$runs_long
  cat "$file" >/dev/null  # both start from a warm page cache
  hyperfine -N --style none --warmup 2 --runs "$n" --export-json "$json" \
    "$lockanalyze events --format csv -o /dev/null $file" \
    "perf script -i $file -F comm,pid,tid,cpu,time,event,trace" >/dev/null 2>&1
  la_rss=$(peak_rss "$lockanalyze" events --format csv -o /dev/null "$file")
  ps_rss=$(peak_rss perf script -i "$file" -F comm,pid,tid,cpu,time,event,trace)
  python3 - "$json" "$name" "$la_rss" "$ps_rss" <<'EOF'
import json, statistics, sys
results = json.load(open(sys.argv[1]))["results"]
name, rss = sys.argv[2], sys.argv[3:5]
stats = [(min(r["times"]), statistics.median(r["times"])) for r in results]
for label, (low, mid), kb in zip(("lockanalyze", "perf script"), stats, rss):
    print(f"{name:<24} {label:<12} {low:9.4f} {mid:9.4f} {kb:>12}")
(la_min, la_med), (ps_min, ps_med) = stats
goal = 8
print(f"{name:<24} speed-up over perf script: {ps_min / la_min:.1f}x (min), "
      f"{ps_med / la_med:.1f}x (median); goal >= {goal}x (min): "
      f"{'met' if ps_min / la_min >= goal else 'NOT met'}")
EOF
done
