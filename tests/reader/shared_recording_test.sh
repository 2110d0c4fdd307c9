#!/usr/bin/env bash
# `lockanalyze events` on the shared real kprobe recording (Debian 6.1.0-56 guest, 8 lock probes,
# about 260,000 samples) agrees with `perf script` on every row. Exits 77 (skipped) saying why when
# the recording or perf is not there.
set -euo pipefail
lockanalyze=$1
top=$(cd "$(dirname "$0")/../.." && pwd)
command -v perf >/dev/null || { echo "SKIPPED: perf is not installed (Debian: linux-perf)"; exit 77; }
recording=$("$top/tests/support/shared-recording") || { echo "SKIPPED: the shared recording is not available"; exit 77; }
python3 "$top/tests/reader/compare_with_perf_script.py" --lockanalyze "$lockanalyze" \
  --perf-data "$recording" --min-rows 259572
