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

# lockrec picks kprobes where the kernel has them, else the contention tracepoints, and says so.
"$bin/lockrec" -o "$recording" -- "${workload[@]}"
# The report names kernel addresses from lockrec's kallsyms side file; pass --vmlinux for DWARF names.
"$bin/lockanalyze" "$recording"
