# Sourced by the tests that record tracepoints with perf. require_tracepoint makes tracefs available
# as perf and lockrec do on a fresh machine (mounted where it is missing, root only) and skips, saying
# why, only for what is really missing: never "no tracepoint" when tracefs is merely not mounted.
# The caller defines skip (prints the reason, exits 77).

# Sets tracefs to the directory tracefs is mounted at, mounting it first if needed.
require_tracefs() {
  local dir error
  for dir in /sys/kernel/tracing /sys/kernel/debug/tracing; do
    if [ -e "$dir/events" ]; then
      tracefs=$dir
      return 0
    fi
  done
  grep -qw tracefs /proc/filesystems || skip "this kernel has no tracefs (CONFIG_TRACING is off)"
  [ -d /sys/kernel/tracing ] || skip "tracefs is not mounted and /sys/kernel/tracing does not exist to mount it on"
  error=$(mount -t tracefs nodev /sys/kernel/tracing 2>&1) ||
    skip "tracefs is not mounted, and mounting it failed: $error"
  echo "note: tracefs was not mounted; mounted it at /sys/kernel/tracing, as perf and lockrec do"
  tracefs=/sys/kernel/tracing
}

# Skips unless the kernel has the tracepoint SUBSYSTEM/EVENT (e.g. lock/contention_begin).
require_tracepoint() {
  require_tracefs
  [ -d "$tracefs/events/$1" ] || skip "this kernel has no $1 tracepoint (tracefs is mounted at $tracefs)"
}
