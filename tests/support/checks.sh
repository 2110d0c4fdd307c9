# Sourced by the command-line tests that run many small checks in a scratch directory: each check
# prints "ok" or "FAIL" and the test goes on, then end_checks exits 1 if any failed.
failures=0
check() {  # WHAT COMMAND...: the command must succeed
  local what=$1
  shift
  if "$@"; then echo "ok   $what"; else echo "FAIL $what"; failures=$((failures + 1)); fi
}
# The exit status of COMMAND..., its stdout in out.txt and its stderr in err.txt.
status_of() { local status=0; "$@" >out.txt 2>err.txt || status=$?; echo "$status"; }
end_checks() {
  if [ "$failures" != 0 ]; then
    echo "$failures checks failed"
    exit 1
  fi
  echo PASS
}
