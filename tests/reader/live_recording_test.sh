#!/usr/bin/env bash
# Records real lock contention on this machine with perf and checks `lockanalyze events` against
# `perf script` on it. MODE: file | zstd | pipe | killed | lossy. Needs root and perf; exits 77 (skipped)
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
source "$(dirname "$0")/../support/live-recording.sh"
require_tracepoint lock/contention_begin

work=$(mktemp -d /tmp/lockscope-live.XXXXXX)
trap 'rm -rf "$work"' EXIT
fail_loudly_on_error "$work/perf.err" "$work/summary.txt"
events=(-e lock:contention_begin,lock:contention_end -g -a)
workload=(bash -c 'contention_workload 3')

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
      bash -c 'contention_workload 60' 2>"$work/perf.err" &
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
  lossy)
    # One page of ring buffer per CPU under heavy contention: perf loses events, and writes both a
    # PERF_RECORD_LOST and a LOST_SAMPLES count for the same loss. The report's "lost N" must be
    # perf report's "Total Lost Samples" (once, not the sum), and a loss of 1% or more a warning.
    perf record -q -m 1 "${events[@]}" -o "$work/perf.data" -- \
      bash -c 'contention_workload 3 8 4' 2>"$work/perf.err"
    python3 "$compare" --lockanalyze "$lockanalyze" --perf-data "$work/perf.data" --min-rows 2
    expected=$(perf report -i "$work/perf.data" --stdio 2>/dev/null | sed -n 's/^# Total Lost Samples: //p')
    [ -n "$expected" ] && [ "$expected" -gt 0 ] ||
      { echo "FAIL: perf lost nothing with -m 1 under stress-ng; the test proves nothing"; exit 1; }
    "$lockanalyze" "$work/perf.data" >"$work/report.txt" 2>"$work/report.err"
    lost=$(sed -n '2s/.*, lost \([0-9]*\)$/\1/p' "$work/report.txt")
    [ "$lost" = "$expected" ] || { echo "FAIL: the report says lost '$lost', perf report $expected"; exit 1; }
    samples=$(perf script -i "$work/perf.data" -F event 2>/dev/null | grep -c .)
    if ((expected * 100 >= (expected + samples))); then
      grep -q "^lockanalyze: warning: perf lost $expected events" "$work/report.err" ||
        { echo "FAIL: no warning on stderr for losing $expected of $((expected + samples)) events"; exit 1; }
      grep -q "^note: perf lost $expected events" "$work/report.txt" || { echo "FAIL: no note in the report"; exit 1; }
    fi
    echo "perf lost $expected events beside $samples samples; the report says lost $lost"
    ;;
  *) echo "unknown mode $mode"; exit 2 ;;
esac
