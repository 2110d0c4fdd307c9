#!/usr/bin/env bash
# The perf.data inputs of the fuzz corpora and every input a fuzzer once crashed on, read by
# lockanalyze itself in file and pipe mode: each must end cleanly (exit 0, or exit 1 with exactly
# one line naming the problem), never with a signal, a hang or a sanitizer report.
set -uo pipefail
lockanalyze=$1
here=$(cd "$(dirname "$0")" && pwd)
inputs=()
for dir in corpus/perf_data_file corpus/perf_data_pipe regressions/perf_data_file regressions/perf_data_pipe; do
  [ -d "$here/$dir" ] && while IFS= read -r -d '' file; do inputs+=("$file"); done \
    < <(find "$here/$dir" -type f -print0)
done
# No input would make this pass having read nothing (a *.data input once stayed out of git).
if ((${#inputs[@]} == 0)); then
  echo "FAIL: no perf.data corpus or regressions under $here"
  exit 1
fi
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}halt_on_error=1:exitcode=99"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}halt_on_error=1:print_stacktrace=1"
# The one third-party leak (libtraceevent, see tests/lsan.supp); everything else still fails.
export LSAN_OPTIONS="${LSAN_OPTIONS:+$LSAN_OPTIONS:}suppressions=$here/../lsan.supp:print_suppressions=0"
errors_file=$(mktemp)
trap 'rm -f "$errors_file"' EXIT
failed=0 clean_errors=0 successes=0
for input in "${inputs[@]}"; do
  for mode in file pipe; do
    if [ "$mode" = file ]; then
      timeout 60 "$lockanalyze" events "$input" -o /dev/null 2>"$errors_file"
    else
      timeout 60 "$lockanalyze" events - -o /dev/null <"$input" 2>"$errors_file"
    fi
    status=$?
    error_lines=$(grep -c '^lockanalyze:' "$errors_file")
    other_lines=$(grep -vc '^lockanalyze:\|^warning\|^lockanalyze warning' "$errors_file")
    if [ "$status" = 0 ]; then
      successes=$((successes + 1))
    elif [ "$status" = 1 ] && [ "$error_lines" = 1 ] && [ "$other_lines" = 0 ]; then
      clean_errors=$((clean_errors + 1))
    else
      echo "FAIL: ${input#"$here"/} ($mode): exit $status"
      cat "$errors_file"
      failed=1
    fi
  done
done
echo "${#inputs[@]} inputs in 2 modes: $successes read, $clean_errors clean errors, failures: $failed"
exit $failed
