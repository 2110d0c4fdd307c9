#!/usr/bin/env bash
# lockanalyze's lockdep findings from the command line, on a lockrec-style recording of what the
# guest test module makes (make_lockdep_recording): the three findings by kind and lock name (named
# from the FILE.kallsyms side file), text before the sharing report, --fail-on-findings exiting 3,
# and a clean recording exiting 0.
set -euo pipefail
make_recording=$1
lockanalyze=$2

work=$(mktemp -d /tmp/lockscope-lockdep.XXXXXX)
trap 'rm -rf "$work"' EXIT
failures=0
check() {  # WHAT CONDITION-STATUS
  if [ "$2" = 0 ]; then echo "ok   $1"; else echo "FAIL $1"; failures=$((failures + 1)); fi
}

"$make_recording" "$work/bugs.perf.data"
"$make_recording" "$work/clean.perf.data" --clean

"$lockanalyze" "$work/bugs.perf.data" --format json > "$work/bugs.json"
python3 - "$work/bugs.json" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
found = sorted((f["kind"], tuple(lock["name"] for lock in f["locks"])) for f in report["findings"])
expected = sorted([
    ("irq-inconsistent", ("lockscope_irq_lock",)),
    ("lock-order-cycle", ("lockscope_spin_a", "lockscope_spin_b")),
    ("lock-order-cycle", ("lockscope_mutex_a", "lockscope_mutex_b")),
])
print("findings:", found)
if found != expected:
    print("expected:", expected)
    sys.exit(1)
irq = next(f for f in report["findings"] if f["kind"] == "irq-inconsistent")
assert irq["title"] == "inconsistent {IN-HARDIRQ-W} -> {HARDIRQ-ON-W} usage", irq["title"]
assert irq["evidence"][0]["first_stack"][1]["symbol"] == "lockscope_timer_fn+0x10", irq["evidence"][0]
assert irq["evidence"][1]["holder"] == "insmod[300]", irq["evidence"][1]
holders = {e["holder"] for f in report["findings"] if f["kind"] == "lock-order-cycle" for e in f["evidence"]}
assert holders == {"lockscope_ab[301]", "lockscope_ba[302]"}, holders
PY
check "the module's three findings, named from FILE.kallsyms, with their stacks and holders" $?

"$lockanalyze" "$work/bugs.perf.data" > "$work/bugs.txt"
findings_line=$(grep -n "^Lockdep findings" "$work/bugs.txt" | cut -d: -f1)
locks_line=$(grep -n "^Locks shared by the most holders" "$work/bugs.txt" | cut -d: -f1)
[ -n "$findings_line" ] && [ -n "$locks_line" ] && [ "$findings_line" -lt "$locks_line" ]
check "text: findings come before the sharing report" $?
grep -q "<Interrupt>" "$work/bugs.txt" && grep -q "possible circular locking dependency detected" "$work/bugs.txt"
check "text: lockdep's words and the unsafe scenario" $?

status=0
"$lockanalyze" "$work/bugs.perf.data" --fail-on-findings > /dev/null || status=$?
[ "$status" = 3 ]
check "--fail-on-findings exits 3 with findings (got $status)" $?

status=0
"$lockanalyze" "$work/clean.perf.data" --fail-on-findings > "$work/clean.txt" || status=$?
[ "$status" = 0 ] && grep -q "^Lockdep findings (lockdep's rules applied to the recording): 0" "$work/clean.txt"
check "--fail-on-findings exits 0 without findings (got $status)" $?

[ "$failures" = 0 ]
