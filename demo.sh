#!/usr/bin/env bash
# The main job, for real, on this machine: record the running system for a few seconds while a
# small workload makes lock traffic, then print what lockanalyze finds. Run after ./setup.sh, as
# root. RECORDING (default /tmp/lockscope-demo.perf.data) keeps the recording for a second look.
set -euo pipefail
cd "$(dirname "$0")"
bin=${LOCKSCOPE_BUILD_DIR:-build}/bin
recording=${RECORDING:-/tmp/lockscope-demo.perf.data}
workload=(stress-ng --pthread 4 --fork 2 --timeout 5 --quiet)

[ "$(id -u)" = 0 ] || { echo "demo.sh: run as root (perf records system-wide)" >&2; exit 1; }
[ -x "$bin/lockanalyze" ] || { echo "demo.sh: $bin/lockanalyze is missing; run ./setup.sh" >&2; exit 1; }

if [ -x "$bin/lockrec" ]; then
  "$bin/lockrec" -o "$recording" -- "${workload[@]}"
else
  # Until lockrec is built: the tracepoints it falls back to on kernels without kprobes.
  echo "demo.sh: recording lock contention with perf for 5 s" >&2
  perf record -q -e lock:contention_begin,lock:contention_end -g -a -o "$recording" -- "${workload[@]}"
fi
echo "demo.sh: lock events of $recording (first rows; the summary follows)" >&2
"$bin/lockanalyze" events "$recording" -o "$recording.events.csv"
head -n 11 "$recording.events.csv"
echo "(all rows: $recording.events.csv)"
