#!/usr/bin/env bash
# Benchmark (not a test) of a hostile pipe stream: N HEADER_ATTR records, one id each, then
# FINISHED_INIT. Reading it must cost time linear in N. Before the reader checked attrs one at a
# time it rebuilt its id table per attr: 32,000 attrs took 10.9 s, 320,000 would take ~18 min.
# Prints wall time and peak RSS per N from /usr/bin/time.
#
# Usage: bench/many_attrs.sh [build-dir] [N...]   (default: build; 32000 320000)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top/build}
shift || true
counts=("$@")
[ ${#counts[@]} -gt 0 ] || counts=(32000 320000)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for n in "${counts[@]}"; do
  python3 - "$n" >"$work/stream" <<'EOF'
import struct, sys
n = int(sys.argv[1])
out = bytearray(b"PERFILE2" + struct.pack("<Q", 16))
sample_type = (1 << 16) | 1 | 2 | 4  # IDENTIFIER | IP | TID | TIME
for i in range(n):
    attr = bytearray(128)  # PERF_ATTR_SIZE_VER7
    struct.pack_into("<IIQQQ", attr, 0, 2, 128, 1, 1, sample_type)  # tracepoint, size, config, period
    body = bytes(attr) + struct.pack("<Q", 1000 + i)
    out += struct.pack("<IHH", 64, 0, 8 + len(body)) + body  # PERF_RECORD_HEADER_ATTR
out += struct.pack("<IHH", 82, 0, 8)  # PERF_RECORD_FINISHED_INIT
sys.stdout.buffer.write(out)
EOF
  /usr/bin/time -f "$n attrs ($(stat -c %s "$work/stream") bytes): %e s wall, %M KB max RSS" \
    "$build/bin/lockanalyze" events - -o /dev/null <"$work/stream" 2>&1 | grep attrs
done
