#!/usr/bin/env bash
# Every input a fuzzer once crashed on, read again by lockanalyze in file and pipe mode: each must
# end with a clean exit (0, or 1 with one line naming the problem), never a signal.
set -uo pipefail
lockanalyze=$1
dir=$(cd "$(dirname "$0")/regressions" && pwd) || exit 1
shopt -s nullglob
inputs=("$dir"/*)
# No input would make this pass having read nothing (a *.data input once stayed out of git).
[ "${#inputs[@]}" -gt 0 ] || { echo "FAIL: no regression inputs in $dir"; exit 1; }
failed=0
for input in "${inputs[@]}"; do
  for mode in file pipe; do
    if [ "$mode" = file ]; then
      "$lockanalyze" events "$input" -o /dev/null 2>/tmp/lockscope-replay.err
    else
      "$lockanalyze" events - -o /dev/null <"$input" 2>/tmp/lockscope-replay.err
    fi
    status=$?
    errors=$(grep -c '^lockanalyze:' /tmp/lockscope-replay.err)
    if [ "$status" -ge 2 ] || { [ "$status" = 1 ] && [ "$errors" != 1 ]; }; then
      echo "FAIL: $(basename "$input") ($mode): exit $status"; cat /tmp/lockscope-replay.err; failed=1
    else
      echo "ok   $(basename "$input") ($mode): exit $status"
    fi
  done
done
exit $failed
