#!/usr/bin/env bash
# Records real lock contention on this machine with perf and checks `lockanalyze events` against
# `perf script` on it, or checks what lockanalyze says of a damaged or unsuitable recording.
# MODE: file | zstd | pipe | killed | lossy | diskfull | not-lock-events | sampled. Needs root and perf; exits
# 77 (skipped) saying why when it cannot run here.
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
  diskfull)
    # perf (not -q: its ENOSPC message is the proof) fills a 1 MiB tmpfs in a private mount
    # namespace and leaves a header with data size 0 and no feature sections, so no event
    # formats. The report says what happened and what to do, with status 0; --strict exits 4.
    # perf ends its workload when the disk is full: the 60 s are an upper bound (a loaded machine
    # once wrote only 0.9 MB in 3 s), 3 s are typical here.
    command -v unshare >/dev/null || skip "unshare (util-linux) is not installed"
    mkdir "$work/small"
    perf_status=0
    unshare -m bash -c 'mount -t tmpfs -o size=1m lockscope-full "$1" && cd "$1" &&
        perf record "${@:2}" -o perf.data -- bash -c "contention_workload 60" 2>"$0/perf.err";
        status=$?; cp perf.data "$0"/; exit $status' "$work" "$work/small" "${events[@]}" || perf_status=$?
    grep -q "No space left on device" "$work/perf.err" ||
      { echo "FAIL: perf did not run out of space (status $perf_status)"; cat "$work/perf.err"; exit 1; }
    status=0
    "$lockanalyze" "$work/perf.data" >"$work/report.txt" 2>"$work/report.err" || status=$?
    cat "$work/report.err"
    [ "$status" = 0 ] || { echo "FAIL: status $status without --strict"; exit 1; }
    grep -q "^lockanalyze: warning: the header says the data section is empty" "$work/report.err" ||
      { echo "FAIL: no warning about the unfinished header"; exit 1; }
    grep -q "^lockanalyze: warning: the recording's [0-9]* samples cannot be read as lock events: it has no event formats" "$work/report.err" ||
      { echo "FAIL: no word on why no lock events were read"; exit 1; }
    status=0
    "$lockanalyze" --strict "$work/perf.data" >/dev/null 2>&1 || status=$?
    [ "$status" = 4 ] || { echo "FAIL: --strict exited $status, expected 4"; exit 1; }
    echo "a recording whose disk filled: said, status 0; with --strict, status 4"
    ;;
  not-lock-events)
    # A recording of other events, and one of lock events without -g: each report says so.
    perf record -q -e sched:sched_switch -a -o "$work/sched.data" -- sleep 0.3 2>"$work/perf.err"
    "$lockanalyze" "$work/sched.data" >/dev/null 2>"$work/report.err"
    cat "$work/report.err"
    grep -q "^lockanalyze: warning: the recording's [0-9]* samples are of events that are not lock events (sched:sched_switch.*): nothing to report; record lock events with \`lockrec -- COMMAND\`" "$work/report.err" ||
      { echo "FAIL: no word that sched:sched_switch is not a lock event"; exit 1; }
    perf record -q -e lock:contention_begin,lock:contention_end -a -o "$work/flat.data" -- bash -c 'contention_workload 3' 2>"$work/perf.err"
    "$lockanalyze" "$work/flat.data" >/dev/null 2>"$work/report.err"
    cat "$work/report.err"
    grep -q "^lockanalyze: warning: recorded without call chains: no stacks, callers or lock classes (record with -g)$" "$work/report.err" ||
      { echo "FAIL: no word that the recording has no call chains"; exit 1; }
    ;;
  sampled)
    # perf record -F samples the tracepoints: each sample stands for its period of events. The
    # report says so with perf report's own figures (the oracle): samples and "Event count".
    perf record -q -F 100 "${events[@]}" -o "$work/perf.data" -- "${workload[@]}" 2>"$work/perf.err"
    perf report -i "$work/perf.data" --stdio 2>/dev/null >"$work/perf-report.txt"
    samples=$(sed -n 's/^# Samples: \([0-9]*\) *of event .lock:contention_.*/\1/p' "$work/perf-report.txt" | awk '{ n += $1 } END { print n + 0 }')
    count=$(sed -n 's/^# Event count (approx.): \([0-9]*\)$/\1/p' "$work/perf-report.txt" | awk '{ n += $1 } END { print n + 0 }')
    [ "${samples:-0}" -gt 0 ] || { echo "FAIL: perf report found no samples"; cat "$work/perf-report.txt"; exit 1; }
    "$lockanalyze" "$work/perf.data" >/dev/null 2>"$work/report.err"
    cat "$work/report.err"
    grep -q "^lockanalyze: warning: a sampled recording (perf record -F, or -c N): $samples lock events are samples that stand for $count by their periods" "$work/report.err" ||
      { echo "FAIL: the report does not say that its $samples samples stand for $count events (perf report)"; exit 1; }
    ;;
  *) echo "unknown mode $mode"; exit 2 ;;
esac
