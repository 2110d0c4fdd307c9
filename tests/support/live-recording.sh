# Sourced by the tests that record real contention with perf on this machine.
#
# contention_workload SECONDS [PTHREADS FORKS]: stress-ng threads (4) and forks (2) for SECONDS. perf record
# exits with its workload's status, so a stress-ng that exits non-zero (a stressor it could not
# start) would end the test as if perf had failed, silently. The workload only exists to make
# contention, and the tests check that there was enough: its status is reported, not fatal.
contention_workload() {
  local seconds=$1 pthreads=${2:-4} forks=${3:-2} status=0
  stress-ng --pthread "$pthreads" --fork "$forks" --timeout "$seconds" --quiet || status=$?
  [ "$status" = 0 ] || echo "note: stress-ng exited with status $status (ignored: it only makes contention)" >&2
  return 0
}
export -f contention_workload

# fail_loudly_on_error LOG...: under set -e, a failing step ends the test with no word of why when
# its stderr went to a file. This names the line and command, and prints the LOGs that exist.
fail_loudly_on_error() {
  live_recording_logs=("$@")
  trap 'live_recording_failed $? $LINENO "$BASH_COMMAND"' ERR
}
live_recording_failed() {
  echo "FAIL: line $2 exited with status $1: $3"
  local log
  for log in "${live_recording_logs[@]}"; do
    [ -s "$log" ] && { echo "--- $log"; cat "$log"; }
  done
  return 0
}
