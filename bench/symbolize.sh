#!/usr/bin/env bash
# Benchmark of the symbolizer (not a test): names every distinct lock address and every distinct
# kernel frame of the shared recording against the Debian vmlinux (633 MB) in one fresh process, and
# prints its wall time and peak RSS from /usr/bin/time -v. The addresses are extracted with perf
# first, outside the timing. Target: under 3 s.
#
# Usage: bench/symbolize.sh [build-dir]   (default: build; uses bin/lockanalyze, else the test driver)
# BENCH_COLD=1 first evicts the vmlinux (only that file) from the page cache with dd's nocache
# advice, for a cold run that does not disturb other work on a shared machine.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-${LOCKSCOPE_BUILD_DIR:-$top/build}}
if [ -x "$build/bin/lockanalyze" ] && "$build/bin/lockanalyze" symbolize --help >/dev/null 2>&1; then
  tool=("$build/bin/lockanalyze" symbolize)
elif [ -x "$build/bin/lockscope_symbolize_cli" ]; then
  tool=("$build/bin/lockscope_symbolize_cli" symbolize)
else
  echo "symbolize.sh: build lockanalyze or lockscope_symbolize_cli in $build first" >&2
  exit 1
fi
vmlinux=$("$top/tests/support/fetch-vmlinux")
recording=$("$top/tests/support/shared-recording")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

perf script -i "$recording" -F trace 2>/dev/null | grep -o 'lock=0x[0-9a-f]*' | sed 's/lock=//' | sort -u > "$work/locks"
perf script -i "$recording" -F ip 2>/dev/null | awk '$1 ~ /^ffffffff/ {print "0x" $1}' | sort -u > "$work/frames"
cat "$work/locks" "$work/frames" > "$work/addresses"
echo "addresses: $(wc -l < "$work/locks") distinct lock addresses ($(grep -c '^0xffffffff8' "$work/locks") static), $(wc -l < "$work/frames") distinct kernel frames"

if [ "${BENCH_COLD:-0}" = 1 ]; then
  dd if="$vmlinux" iflag=nocache count=0 status=none
  echo "cold: $vmlinux evicted from the page cache"
fi
/usr/bin/time -v "${tool[@]}" --vmlinux "$vmlinux" --format jsonl < "$work/addresses" > "$work/out" 2> "$work/time"
grep -E 'Elapsed \(wall clock\)|Maximum resident set size|User time|System time' "$work/time"
echo "named: $(grep -c '"found":true' "$work/out") of $(wc -l < "$work/out") (heap addresses are not in the vmlinux and stay unnamed)"
