#!/usr/bin/env bash
# A recording cut short is read up to the damage, with a warning on stderr that says where and what
# was lost, and status 0; --strict makes the same damage exit 4, after the output is written.
# perf script (the oracle) reads a file cut by its last byte too: lockanalyze must agree with it.
# Usage: damaged_input_test.sh LOCKANALYZE FIXTURE COMPARE_WITH_PERF_SCRIPT
set -euo pipefail
lockanalyze=$(realpath "$1")
fixture=$(realpath "$2")
compare=$(realpath "$3")

source "$(dirname "$0")/../support/checks.sh"
work=$(mktemp -d /tmp/lockscope-damaged.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
header_u64() { od -An -t u8 -j "$1" -N 8 "$fixture" | tr -d ' '; }

size=$(stat -c %s "$fixture")
data_offset=$(header_u64 40)
data_size=$(header_u64 48)
head -c $((size - 1)) "$fixture" >last-byte.data
half=$((data_offset + data_size / 2))
head -c "$half" "$fixture" >half.data
printf "ffffffff81000000 T _text\nffffffff81000100 T _etext\n" >ks

# The whole file is not damaged: --strict changes nothing.
check "the whole recording with --strict: status 0" test "$(status_of "$lockanalyze" --strict "$fixture")" = 0
cp out.txt whole-report.txt

echo "== cut by its last byte: the last feature section is lost, every record is read"
check "report: status 0" test "$(status_of "$lockanalyze" last-byte.data)" = 0
check "... one warning naming the feature section and the file's size" \
  test "$(grep -c . err.txt)" = 1 -a -n "$(grep "^lockanalyze: warning: feature section [A-Z_]* \[[0-9]*, +[0-9]*) runs past the end of the file ($((size - 1)) bytes): skipped$" err.txt)"
check "... the same counts as the whole recording" test "$(sed -n 2p out.txt)" = "$(sed -n 2p whole-report.txt)"
check "... the damage is among the report's notes" grep -q "^note: feature section .* runs past the end" out.txt
if command -v perf >/dev/null; then
  check "events agree with perf script on the cut file, row by row" \
    python3 "$compare" --lockanalyze "$lockanalyze" --perf-data last-byte.data --min-rows 2
else
  echo "note: perf is not installed: the cut file is not checked against perf script (setup.sh installs it)"
fi
for command in "report" "events" "contention --kallsyms ks"; do
  # shellcheck disable=SC2086
  set -- $command
  check "$1 --strict: status 4, after the output is written" \
    test "$(status_of "$lockanalyze" "$@" --strict last-byte.data)" = 4 -a -s out.txt
  check "... and says why" grep -q "^lockanalyze: --strict: the recording is damaged (1 problem, above); exit 4$" err.txt
done

echo "== cut in the middle of its data section: the records before the cut are read"
check "report: status 0" test "$(status_of "$lockanalyze" half.data)" = 0
check "... says where the file ends and how much of the data section is missing" \
  grep -q "^lockanalyze: warning: the file ends at byte $half, $((data_offset + data_size - half)) bytes before the end of its data section \[$data_offset, +$data_size)" err.txt
check "... says the partial record at the cut was ignored" grep -q "^lockanalyze: warning: the data ends with a partial record at offset" err.txt
check "... says why there are no lock events and what to do" \
  grep -q "^lockanalyze: warning: the recording's [0-9]* samples cannot be read as lock events: it has no event formats .*record again and let perf finish" err.txt
check "events: status 0, the same warning" \
  test "$(status_of "$lockanalyze" events half.data -o /dev/null)" = 0 -a -n "$(grep "^warning: the file ends at byte $half" err.txt)"
check "events --strict: status 4" test "$(status_of "$lockanalyze" events --strict half.data -o /dev/null)" = 4
check "report --strict: status 4, two problems" \
  test "$(status_of "$lockanalyze" --strict half.data)" = 4 -a -n "$(grep '(2 problems, above)' err.txt)"

end_checks
