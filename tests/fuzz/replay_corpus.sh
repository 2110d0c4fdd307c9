#!/usr/bin/env bash
# Replays one fuzz target's committed corpus and its crash regressions through the target binary
# (libFuzzer runs each named file once; the plain build's main does the same). Any crash, hang or
# sanitizer report fails: the binary's output is shown as it is, never filtered.
set -uo pipefail
binary=$1 target=$2
here=$(cd "$(dirname "$0")" && pwd)
inputs=()
for dir in "$here/corpus/$target" "$here/regressions/$target"; do
  [ -d "$dir" ] && while IFS= read -r -d '' file; do inputs+=("$file"); done < <(find "$dir" -type f -print0)
done
if ((${#inputs[@]} == 0)); then
  echo "no corpus or regressions for $target under $here: nothing to replay"
  exit 77
fi
echo "replaying ${#inputs[@]} inputs of $target"
# A sanitizer report must end the run with a failure, whatever the caller's environment says.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}halt_on_error=1:abort_on_error=0:exitcode=99"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}halt_on_error=1:print_stacktrace=1"
# The one third-party leak (libtraceevent, see tests/lsan.supp); everything else still fails.
export LSAN_OPTIONS="${LSAN_OPTIONS:+$LSAN_OPTIONS:}suppressions=$here/../lsan.supp:print_suppressions=0"
# xargs keeps each command line bounded; it exits non-zero when any batch fails.
printf '%s\0' "${inputs[@]}" | xargs -0 -n 200 "$binary" -timeout=60
status=$?
[ "$status" = 0 ] && echo "all ${#inputs[@]} inputs of $target replayed cleanly"
exit "$status"
