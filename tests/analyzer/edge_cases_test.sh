#!/usr/bin/env bash
# Builds a synthetic recording of contention edge cases from real kernel addresses and checks
# `lockanalyze contention` against `perf lock contention -i` on it. Needs root (to read
# /proc/kallsyms addresses) and perf; exits 77 (skipped) saying why when it cannot run here.
set -euo pipefail
make_recording=$1
lockanalyze=$2
here=$(cd "$(dirname "$0")" && pwd)

skip() { echo "SKIPPED: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root to read kernel addresses from /proc/kallsyms"
command -v perf >/dev/null || skip "perf is not installed (Debian: linux-perf)"

work=$(mktemp -d /tmp/lockscope-edges.XXXXXX)
trap 'rm -rf "$work"' EXIT

address() {  # SYMBOL [OFFSET]: runtime address, hex
  local base
  base=$(awk -v name="$1" '$3 == name && ($2 == "T" || $2 == "t") { print $1; exit }' /proc/kallsyms)
  [ -n "$base" ] || skip "no $1 in /proc/kallsyms"
  printf '%x\n' $(( 0x$base + ${2:-0} ))
}
for name in down_read down_write do_madvise do_exit __x64_sys_exit do_syscall_64 kernel_clone \
  __do_sys_clone do_mkdirat _text _etext __sched_text_start __sched_text_end __lock_text_start \
  __lock_text_end; do
  address "$name" >/dev/null
done
ranges=()
for section in sched lock; do
  ranges+=(--lock-text "0x$(address "__${section}_text_start")-0x$(address "__${section}_text_end")")
done

"$make_recording" "$work/edges.data" \
  "$(address down_read 4)" "$(address down_write 6)" "$(address do_madvise 0x10)" \
  "$(address do_exit 0x21)" "$(address __x64_sys_exit 0x7)" "$(address do_syscall_64 0x11)" \
  "$(address kernel_clone 0x33)" "$(address __do_sys_clone 0x9)" "$(address do_mkdirat)" \
  "$(address _text)" "$(address _etext)"

perf lock contention -i "$work/edges.data" -E 1000 >"$work/perf.txt" 2>&1 || {
  cat "$work/perf.txt"; echo "FAIL: perf could not read the synthetic recording"; exit 1; }
"$lockanalyze" contention "$work/edges.data" --kallsyms /proc/kallsyms "${ranges[@]}" \
  --format json >"$work/ours.json"
"$lockanalyze" contention "$work/edges.data" --kallsyms /proc/kallsyms "${ranges[@]}" >"$work/ours.txt"
cat "$work/perf.txt"
python3 "$here/compare_with_perf_lock.py" "$work/perf.txt" "$work/ours.json" --min-rows 5 \
  --ours-text "$work/ours.txt"

# The synthetic recording names no kernel release: without --kallsyms/--vmlinux the command must
# stop with one line that says what to pass.
if "$lockanalyze" contention "$work/edges.data" >"$work/no-symbols.out" 2>"$work/no-symbols.err"; then
  echo "FAIL: lockanalyze named frames of a recording from an unknown kernel"; exit 1
fi
grep -v '^warning:' "$work/no-symbols.err" >"$work/no-symbols.msg" || true
[ "$(wc -l <"$work/no-symbols.msg")" = 1 ] && grep -q -- '--kallsyms' "$work/no-symbols.msg" ||
  { echo "FAIL: expected one line naming --kallsyms:"; cat "$work/no-symbols.err"; exit 1; }
