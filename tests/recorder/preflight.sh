#!/usr/bin/env bash
# lockrec's preflight as a user meets it: every problem on a line of its own, each starting with
# "lockrec: " and saying what to do, then exit 125 with nothing run. Uses the fake kernel trees and a
# perf that does not exist; the unprivileged case runs lockrec as nobody (setpriv), so this needs root.
# Usage: preflight.sh LOCKREC FIXTURES_DIR
set -euo pipefail
lockrec=$1
fixtures=$2

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; [ -f "$work/last.err" ] && sed 's/^/  stderr: /' "$work/last.err"; exit 1; }
[ "$(id -u)" = 0 ] || skip "running lockrec as root and as nobody needs root"
command -v setpriv >/dev/null || skip "setpriv is not installed (Debian: util-linux)"

work=$(mktemp -d /tmp/lockrec-preflight.XXXXXX)
chmod 755 "$work"  # nobody runs in it
trap 'rm -rf "$work"' EXIT
cd "$work"

expect_lines() {  # the stderr lines, in order, as grep patterns
  local count
  count=$(wc -l <last.err)
  [ "$count" = "$#" ] || fail "$count lines on stderr, not $#"
  local number=0 pattern
  for pattern in "$@"; do
    number=$((number + 1))
    sed -n "${number}p" last.err | grep -q "^lockrec: .*$pattern" || fail "line $number does not match 'lockrec: ...$pattern'"
  done
}

echo "== as root: no perf, and the kprobe mode asked for on a kernel without kprobes"
status=0
"$lockrec" --perf /nonexistent/perf --system-root "$fixtures/no-kprobes" --mode kprobe -o rec.data -- true \
  >last.out 2>last.err || status=$?
[ "$status" = 125 ] || fail "exit $status, not 125"
expect_lines "perf does not run .*linux-perf" "no kprobe_events .*--mode contention"
[ ! -e rec.data ] || fail "a recording was written"

echo "== as nobody: also no privileges, a perf_event_paranoid that forbids tracing, a directory it cannot write"
status=0
setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all \
  "$lockrec" --perf /nonexistent/perf --system-root "$fixtures/no-kprobes" -o rec.data -- true \
  >last.out 2>last.err || status=$?
[ "$status" = 125 ] || fail "exit $status, not 125"
expect_lines "perf does not run" "needs root, or CAP_PERFMON and CAP_SYS_ADMIN" "perf_event_paranoid is 2: .*sysctl" \
  "cannot write rec.data (Permission denied in .); give -o a path in a directory you can write"
[ ! -e rec.data ] || fail "a recording was written"

echo "== --dry-run checks the kernel alone, one line per problem too"
mkdir -p unmounted/sys/kernel/tracing  # an empty mount point: tracefs not mounted
status=0
"$lockrec" --dry-run --system-root "$work/unmounted" -- true >last.out 2>last.err || status=$?
[ "$status" = 125 ] || fail "dry run: exit $status, not 125"
expect_lines "tracefs is not mounted; mount it"
[ ! -s last.out ] || fail "dry run printed commands despite the problem: $(cat last.out)"
echo PASS
