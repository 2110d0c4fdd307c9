#!/usr/bin/env bash
# `lockanalyze symbolize --perf-data F` with neither --vmlinux nor --kallsyms falls back to
# /proc/kallsyms when the recording's os-release is the running kernel's. A recording is made here
# (perf record of lock:contention_begin for 0.1 s: only its header matters), and the names printed
# are checked against /proc/kallsyms itself. A recording of another kernel (the shared Debian one)
# must be refused instead of named from the wrong kernel's symbols.
# Usage: proc_kallsyms_test.sh LOCKANALYZE SUPPORT_DIR. Exits 77 (skipped) saying why when it cannot
# run here.
set -euo pipefail
lockanalyze=$1
support=$2

skip() { echo "SKIPPED: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }
[ "$(id -u)" = 0 ] || skip "needs root to record system-wide and to read /proc/kallsyms addresses"
command -v perf >/dev/null || skip "perf is not installed (Debian: linux-perf)"
source "$(dirname "$0")/../support/tracefs.sh"
require_tracepoint lock/contention_begin

work=$(mktemp -d /tmp/lockscope-proc-kallsyms.XXXXXX)
trap 'rm -rf "$work"' EXIT
perf record -q -e lock:contention_begin -a -o "$work/perf.data" -- sleep 0.1 2>"$work/perf.err" ||
  skip "perf cannot record here: $(head -n1 "$work/perf.err")"
release=$(perf report --header-only -i "$work/perf.data" 2>/dev/null | sed -n 's/^# os release : //p')
[ "$release" = "$(uname -r)" ] || fail "the recording's os-release is '$release', expected '$(uname -r)'"

# The oracle: text symbols of /proc/kallsyms with no alias at their address and at least 8 bytes to
# the next symbol, every 2000th of them, each looked up 4 bytes in. (/proc/kallsyms is copied with
# cat first: sort reading it directly took minutes here.)
cat /proc/kallsyms > "$work/kallsyms.unsorted"
sort "$work/kallsyms.unsorted" > "$work/kallsyms"
python3 - "$work/kallsyms" > "$work/expected" <<'PICK'
import sys
rows = [line.split() for line in open(sys.argv[1])]
rows = [(int(r[0], 16), r[1], r[2]) for r in rows if len(r) >= 3]
picked = 0
for i, (address, kind, name) in enumerate(rows):
    if kind not in "tT" or i + 1 == len(rows):
        continue
    alone = (i == 0 or rows[i - 1][0] != address) and rows[i + 1][0] - address >= 8
    if alone:
        picked += 1
        if picked % 2000 == 1:
            print(f"{address:x} {name}")
PICK
[ -s "$work/expected" ] || fail "no text symbols picked from /proc/kallsyms"
while read -r address name; do printf '0x%x\n' $((0x$address + 4)); done < "$work/expected" > "$work/addresses"

"$lockanalyze" symbolize --perf-data "$work/perf.data" --format jsonl < "$work/addresses" > "$work/out" 2>"$work/err" ||
  fail "lockanalyze symbolize failed: $(cat "$work/err")"
checked=0
while read -r address name; do
  checked=$((checked + 1))
  line=$(sed -n "${checked}p" "$work/out")
  case $line in
    *"\"name\":\"$name+0x4\""*) ;;
    *) fail "0x$address+4: /proc/kallsyms says $name+0x4, lockanalyze: $line" ;;
  esac
done < "$work/expected"
echo "code: $checked addresses named as /proc/kallsyms has them (from the os-release fallback)"

# Data: named when the kernel lists data symbols (CONFIG_KALLSYMS_ALL); otherwise unnamed, saying so.
data=$(awk '$2 ~ /^[dDbB]$/ && NF == 3 && $1 ~ /^ffffffff/ && $3 !~ /^(__start_|__stop_|__end_|__init_begin$|__bss_start$|_sdata$)/ {print $1, $3; exit}' \
  "$work/kallsyms")
if [ -n "$data" ]; then
  read -r address name <<< "$data"
  line=$("$lockanalyze" symbolize --perf-data "$work/perf.data" --format jsonl "0x$address")
  case $line in
    *"\"found\":true"*"\"name\":\"$name\""*) echo "data: 0x$address named $name" ;;
    *) fail "data 0x$address: /proc/kallsyms says $name, lockanalyze: $line" ;;
  esac
else
  address=$(awk '$3 == "__start_rodata" {print $1}' "$work/kallsyms")
  [ -n "$address" ] || fail "no __start_rodata in /proc/kallsyms to look a data address up at"
  line=$("$lockanalyze" symbolize --perf-data "$work/perf.data" --format jsonl "$(printf '0x%x' $((0x$address + 64)))")
  case $line in
    *"\"found\":false"*CONFIG_KALLSYMS_ALL*) echo "data: unnamed, the kernel has no data symbols (CONFIG_KALLSYMS_ALL)" ;;
    *) fail "a data address was named without data symbols in /proc/kallsyms: $line" ;;
  esac
fi

# Another kernel's recording: no fallback to this kernel's symbols.
if other=$("$support/shared-recording" 2>/dev/null); then
  if "$lockanalyze" symbolize --perf-data "$other" 0xffffffff81000000 > "$work/other.out" 2>&1; then
    fail "a recording of another kernel was named from /proc/kallsyms: $(cat "$work/other.out")"
  fi
  grep -q "not the running one" "$work/other.out" || fail "unexpected refusal: $(cat "$work/other.out")"
  echo "another kernel's recording: refused ($(grep -o 'kernel ([^)]*)' "$work/other.out" | head -n1))"
else
  echo "the shared recording is not there: the refusal for another kernel was not checked"
fi
