#!/usr/bin/env bash
# Records real lock contention on this machine with perf and checks `lockanalyze events` against
# `perf script` on it. MODE: file | zstd | pipe | killed. Needs root and perf; exits 77 (skipped)
# saying why when it cannot run here.
set -euo pipefail
mode=$1
lockanalyze=$2
here=$(cd "$(dirname "$0")" && pwd)
compare="$here/compare_with_perf_script.py"

skip() { echo "SKIPPED: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root to record system-wide tracepoints"
command -v perf >/dev/null || skip "perf is not installed (Debian: linux-perf)"
command -v stress-ng >/dev/null || skip "stress-ng is not installed"
source "$(dirname "$0")/../support/tracefs.sh"
require_tracepoint lock/contention_begin

work=$(mktemp -d /tmp/lockscope-live.XXXXXX)
trap 'rm -rf "$work"' EXIT
events=(-e lock:contention_begin,lock:contention_end -g -a)
workload=(stress-ng --pthread 4 --fork 2 --timeout 3 --quiet)

case $mode in
  file)
    perf record -q "${events[@]}" -o "$work/perf.data" -- "${workload[@]}" 2>"$work/perf.err"
    python3 "$compare" --lockanalyze "$lockanalyze" --perf-data "$work/perf.data" --min-rows 2
    ;;
  zstd)
    perf record -q -z "${events[@]}" -o "$work/perf.data" -- "${workload[@]}" 2>"$work/perf.err"
    "$lockanalyze" events "$work/perf.data" -o "$work/events.csv" 2>"$work/summary.txt"
    grep -q 'COMPRESSED' "$work/summary.txt" || { echo "FAIL: no COMPRESSED records read"; cat "$work/summary.txt"; exit 1; }
    python3 "$compare" --lockanalyze "$lockanalyze" --perf-data "$work/perf.data" --min-rows 2 \
      --events-csv "$work/events.csv"
    ;;
  pipe)
    perf record -q "${events[@]}" -o - -- "${workload[@]}" 2>"$work/perf.err" |
      tee "$work/pipe.data" | "$lockanalyze" events - -o "$work/events.csv" 2>"$work/summary.txt"
    grep -q 'pipe mode' "$work/summary.txt" || { echo "FAIL: not read in pipe mode"; cat "$work/summary.txt"; exit 1; }
    python3 "$compare" --lockanalyze "$lockanalyze" --perf-data "$work/pipe.data" --min-rows 2 \
      --events-csv "$work/events.csv"
    ;;
  killed)
    # perf killed with SIGKILL never rewrites its header: data size stays 0. perf script refuses
    # such a file; lockanalyze reads its records to the last whole one and warns. perf writes
    # without buffering here, and is killed only once lockanalyze sees samples in the growing file.
    perf record -q --no-buffering "${events[@]}" -o "$work/perf.data" -- \
      stress-ng --pthread 4 --fork 2 --timeout 60 --quiet 2>"$work/perf.err" &
    recorder=$!
    samples=0
    for _ in $(seq 60); do
      sleep 0.5
      [ -s "$work/perf.data" ] || continue
      samples=$("$lockanalyze" events "$work/perf.data" -o /dev/null 2>&1 |
                sed -n 's/.*SAMPLE \([0-9]*\).*/\1/p')
      [ "${samples:-0}" -gt 0 ] && break
    done
    kill -KILL "$recorder" 2>/dev/null || true
    wait "$recorder" 2>/dev/null || true
    pkill -x stress-ng 2>/dev/null || true
    [ "${samples:-0}" -gt 0 ] || { echo "FAIL: perf wrote no samples within 30 s"; exit 1; }
    "$lockanalyze" events "$work/perf.data" -o "$work/events.csv" 2>"$work/summary.txt"
    cat "$work/summary.txt"
    grep -q 'data section is empty' "$work/summary.txt" || { echo "FAIL: no warning about the empty data size"; exit 1; }
    samples=$(sed -n 's/.*SAMPLE \([0-9]*\).*/\1/p' "$work/summary.txt")
    [ "${samples:-0}" -gt 0 ] || { echo "FAIL: no samples read from the killed recording"; exit 1; }
    if perf script -i "$work/perf.data" >/dev/null 2>&1; then
      echo "note: perf script read the killed recording too"
    fi
    echo "read $samples samples from a recording whose perf was killed"
    ;;
  *) echo "unknown mode $mode"; exit 2 ;;
esac
