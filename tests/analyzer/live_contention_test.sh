#!/usr/bin/env bash
# Records real lock contention with perf on the spot and checks `lockanalyze contention` against
# `perf lock contention -i` (the oracle) on the same file, row by row. Needs root, perf and
# stress-ng; exits 77 (skipped) saying why when it cannot run here.
set -euo pipefail
lockanalyze=$1
here=$(cd "$(dirname "$0")" && pwd)

skip() { echo "SKIPPED: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root to record system-wide tracepoints and read /proc/kallsyms"
command -v perf >/dev/null || skip "perf is not installed (Debian: linux-perf)"
command -v stress-ng >/dev/null || skip "stress-ng is not installed"
source "$(dirname "$0")/../support/tracefs.sh"
source "$(dirname "$0")/../support/live-recording.sh"
require_tracepoint lock/contention_begin

work=$(mktemp -d /tmp/lockscope-contention.XXXXXX)
trap 'rm -rf "$work"' EXIT
fail_loudly_on_error "$work/record.err"

# perf's lock functions are the kernel's sched and lock text. The command finds the two ranges
# by symbol name itself; the test also hands them over from kallsyms and checks both agree.
symbol() { awk -v name="$1" '$3 == name { print $1; exit }' /proc/kallsyms; }
ranges=()
for section in sched lock; do
  start=$(symbol "__${section}_text_start"); end=$(symbol "__${section}_text_end")
  [ -n "$start" ] && [ -n "$end" ] && ranges+=(--lock-text "0x$start-0x$end")
done

perf record -q -e lock:contention_begin,lock:contention_end -g -a -o "$work/perf.data" \
  -- bash -c 'contention_workload 3' 2>"$work/record.err"
# perf prints its table on stderr (pr_info); -E large enough to show every row.
perf lock contention -i "$work/perf.data" -E 1000000 >"$work/perf.txt" 2>&1
perf lock contention -i "$work/perf.data" >"$work/perf-default.txt" 2>&1
"$lockanalyze" contention "$work/perf.data" --kallsyms /proc/kallsyms "${ranges[@]}" \
  --format json >"$work/ours.json"
"$lockanalyze" contention "$work/perf.data" --kallsyms /proc/kallsyms "${ranges[@]}" \
  >"$work/ours.txt"
python3 "$here/compare_with_perf_lock.py" "$work/perf.txt" "$work/ours.json" --min-rows 2 \
  --ours-text "$work/ours.txt"
python3 "$here/compare_with_perf_lock.py" "$work/perf-default.txt" "$work/ours.json" --min-rows 2 \
  --ours-text "$work/ours.txt"
# -E: only the top rows, in the same order.
perf lock contention -i "$work/perf.data" -E 3 >"$work/perf-top.txt" 2>&1
"$lockanalyze" contention "$work/perf.data" --kallsyms /proc/kallsyms "${ranges[@]}" -E 3 \
  >"$work/ours-top.txt"
python3 "$here/compare_with_perf_lock.py" "$work/perf-top.txt" "$work/ours.json" --min-rows 1 \
  --ours-text "$work/ours-top.txt"
# -k contended: many rows tie at small counts, so this checks perf's tie order (hash buckets).
perf lock contention -i "$work/perf.data" -k contended >"$work/perf-count.txt" 2>&1
"$lockanalyze" contention "$work/perf.data" --kallsyms /proc/kallsyms "${ranges[@]}" -k contended \
  --format json >"$work/ours-count.json"
"$lockanalyze" contention "$work/perf.data" --kallsyms /proc/kallsyms "${ranges[@]}" -k contended \
  >"$work/ours-count.txt"
python3 "$here/compare_with_perf_lock.py" "$work/perf-count.txt" "$work/ours-count.json" \
  --min-rows 2 --ours-text "$work/ours-count.txt"
# Without --kallsyms the running kernel's /proc/kallsyms is used, since the recording is from it.
"$lockanalyze" contention "$work/perf.data" "${ranges[@]}" --format json >"$work/default.json"
cmp "$work/ours.json" "$work/default.json" || { echo "FAIL: /proc/kallsyms default differs"; exit 1; }
# Without --lock-text the ranges come from the symbols by name.
"$lockanalyze" contention "$work/perf.data" --format json >"$work/found-ranges.json"
cmp "$work/ours.json" "$work/found-ranges.json" || { echo "FAIL: ranges found by name differ"; exit 1; }
# The report's contention table is the same table.
"$lockanalyze" "$work/perf.data" --format json >"$work/report.json"
python3 - "$work/ours.json" "$work/report.json" <<'PY' || { echo "FAIL: the report's contention rows differ"; exit 1; }
import json, sys
rows = json.load(open(sys.argv[1]))
report = json.load(open(sys.argv[2]))["contention"]
sys.exit(0 if rows == report and rows else 1)
PY
# From a pipe (perf record -o -): the same table as from the stream saved to a file (perf lock
# contention itself reads only file mode), and an empty standard input is one clear error.
perf record -q -e lock:contention_begin,lock:contention_end -g -a -o - -- bash -c 'contention_workload 3' \
  2>"$work/record.err" | tee "$work/pipe.data" | "$lockanalyze" contention - --format json >"$work/from-pipe.json"
"$lockanalyze" contention "$work/pipe.data" --format json >"$work/from-file.json"
cmp "$work/from-pipe.json" "$work/from-file.json" || { echo "FAIL: contention - differs from the same stream in a file"; exit 1; }
grep -q '"caller"' "$work/from-pipe.json" || { echo "FAIL: no rows from the pipe"; exit 1; }
status=0
"$lockanalyze" contention - </dev/null >/dev/null 2>"$work/empty.err" || status=$?
[ "$status" = 1 ] && [ "$(cat "$work/empty.err")" = "lockanalyze: <stdin>: standard input is empty; pipe perf record -o - into it" ] ||
  { echo "FAIL: an empty standard input gave status $status: $(cat "$work/empty.err")"; exit 1; }
echo "contention - reads a pipe: $(grep -c '"caller"' "$work/from-pipe.json") rows, as from the file"
