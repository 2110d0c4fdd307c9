#!/usr/bin/env bash
# Issue 25's stress check, run on demand (not in CI): the recorder's flow tests (kprobe flow on a
# fake kernel, preflight) RUNS times in the ASan + UBSan build while stress-ng keeps LOAD CPUs busy,
# JOBS runs at a time, each under the deadline ctest gives it. Prints runs, hangs (the deadline
# ended the run: its processes and what each waited in are kept in the log) and failures.
#
#   bench/recorder_flow_stress.sh [RUNS] [JOBS]     as root; RUNS 500, JOBS 2 by default
#
# LOAD (default: every CPU) is stress-ng --cpu's count; CI's own load is the qemu guest, one CPU.
# The sanitizer build is build-asan (tests/run --sanitize makes it; this script builds it if it is
# missing), or LOCKSCOPE_BUILD_DIR. Logs of runs that did not pass stay in $LOG_DIR (default
# /var/tmp/lockscope-stress).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-500}
jobs=${2:-2}
build=$(realpath -m "${LOCKSCOPE_BUILD_DIR:-build-asan}")
load=${LOAD:-$(nproc)}
log_dir=${LOG_DIR:-/var/tmp/lockscope-stress}

[ "$(id -u)" = 0 ] || { echo "recorder_flow_stress.sh: run as root (lockrec's preflight wants it)" >&2; exit 1; }
command -v stress-ng >/dev/null || { echo "recorder_flow_stress.sh: stress-ng is missing (setup.sh installs it)" >&2; exit 1; }
if [ ! -x "$build/bin/lockrec" ]; then
  LOCKSCOPE_BUILD_DIR=$build LOCKSCOPE_WERROR=ON LOCKSCOPE_CMAKE_ARGS="-DLOCKSCOPE_SANITIZE=ON" ./setup.sh
fi
export ASAN_OPTIONS="halt_on_error=1:exitcode=99:detect_leaks=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
mkdir -p "$log_dir"
rm -f "$log_dir"/run-*.log

# The same deadlines as in the sanitizer build's ctest (tests/CMakeLists.txt: SECONDS x 6).
one_run() {  # RUN-NUMBER; prints "pass", "hang" or "fail"
  local log="$log_dir/run-$1.log" status=0
  {
    tests/support/deadline 720 -- tests/recorder/kprobe_flow.sh "$build/bin/lockrec" "$PWD/fixtures/recorder" &&
      tests/support/deadline 360 -- tests/recorder/preflight.sh "$build/bin/lockrec" "$PWD/fixtures/recorder"
  } >"$log" 2>&1 || status=$?
  case $status in
    0) echo pass; rm -f "$log" ;;
    124) echo hang ;;
    *) echo fail ;;
  esac
}
export -f one_run
export build log_dir

stress-ng --cpu "$load" --timeout 0 --quiet &
load=$!
trap 'kill "$load" 2>/dev/null; wait "$load" 2>/dev/null || true' EXIT

started=$SECONDS
seq "$runs" | xargs -P "$jobs" -I{} bash -c 'one_run {}' >"$log_dir/outcomes.txt"
passes=$(grep -c '^pass$' "$log_dir/outcomes.txt" || true)
hangs=$(grep -c '^hang$' "$log_dir/outcomes.txt" || true)
fails=$(grep -c '^fail$' "$log_dir/outcomes.txt" || true)
echo "recorder flow stress: $runs runs ($jobs at a time, stress-ng --cpu $load, $build) in $((SECONDS - started)) s:" \
  "$passes passed, $hangs hangs, $fails failures"
[ "$hangs" = 0 ] && [ "$fails" = 0 ] || { echo "logs of the runs that did not pass: $log_dir/run-*.log"; exit 1; }
