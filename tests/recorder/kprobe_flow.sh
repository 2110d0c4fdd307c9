#!/usr/bin/env bash
# The kprobe path end to end on a fake kernel tree (this machine's kernel has no kprobes): lockrec
# runs the fake perf next to this script, which keeps the tree's kprobe_events as the kernel would.
# Checks the order of perf commands and that no lockrec probe outlives a run, whatever ends it,
# while other groups' probes are left alone. Needs root only because lockrec's preflight does.
# Usage: kprobe_flow.sh LOCKREC FIXTURES_DIR
set -euo pipefail
set -m  # background jobs keep SIGINT, as at a terminal
lockrec=$1
fixtures=$2
here=$(cd "$(dirname "$0")" && pwd)

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; [ -f "$work/last.err" ] && sed 's/^/  stderr: /' "$work/last.err"; exit 1; }
[ "$(id -u)" = 0 ] || skip "lockrec's preflight wants root (or CAP_PERFMON and CAP_SYS_ADMIN)"
command -v python3 >/dev/null || skip "python3 is not installed (setup.sh installs it)"

work=$(mktemp -d /tmp/lockrec-kprobe-flow.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
export FAKE_PERF_LOG=$work/perf.log
export FAKE_TRACEFS=$work/root/sys/kernel/tracing

fresh_root() {  # a copy of the x86_64 fixture, with kprobe_events holding $1
  rm -rf root perf.log
  cp -r "$fixtures/x86_64" root
  mkdir -p root/run/lock
  printf '%s' "${1:-}" >"$FAKE_TRACEFS/kprobe_events"
}
run_lockrec() {  # lockrec with the fake perf and tree; sets $status
  status=0
  "$lockrec" --perf "$here/fake-perf" --system-root "$work/root" "$@" >last.out 2>last.err || status=$?
}
lockrec_probes() { grep -c '^[pr][0-9]*:lockrec/' "$FAKE_TRACEFS/kprobe_events" || true; }
expect_status() { [ "$status" = "$1" ] || fail "$2: exit $status, not $1"; }
expect_no_probes() { [ "$(lockrec_probes)" = 0 ] || fail "$1: lockrec probes left: $(cat "$FAKE_TRACEFS/kprobe_events")"; }
other_probe='p:probe/do_sys_openat2 do_sys_openat2 dfd=%di:s32'
# Starts lockrec in the background with stderr on a fifo, and returns once it records; sets pid.
# Its stderr goes on to last.err through a reader (drain) that ends when lockrec does.
start_lockrec() {
  local line
  rm -f progress && mkfifo progress
  "$lockrec" --perf "$here/fake-perf" --system-root "$work/root" "$@" 2>progress &
  pid=$!
  exec 3<progress
  while read -r line <&3; do
    echo "$line" >>last.err
    case $line in *"recording in kprobe mode"*) break ;; esac
  done
  cat <&3 >>last.err &
  drain=$!
}
finish_lockrec() {  # waits for lockrec; sets status
  status=0
  wait "$pid" || status=$?
  wait "$drain" || true
  exec 3<&-
}

echo "== a recording: add probes, record them, remove them"
fresh_root "$other_probe
"
run_lockrec -o rec.data -- true
expect_status 0 "normal run"
expect_no_probes "normal run"
grep -qx "$other_probe" "$FAKE_TRACEFS/kprobe_events" || fail "another group's probe was removed"
grep -q "^perf probe --quiet --no-inlines --add lockrec:_raw_spin_lock=_raw_spin_lock\\\\ lock=%di:x64 " perf.log ||
  fail "no probe --add line: $(cat perf.log)"
# add, then record, then delete, in that order
[ "$(awk '{print $2}' perf.log | tr '\n' ' ')" = "--version probe record probe " ] || fail "wrong order: $(cat perf.log)"
grep -q -- '-e lockrec:_raw_spin_lock -e' perf.log || fail "record does not take the probes"
grep -q -- 'probe --quiet --del lockrec:\\\*' perf.log || fail "no probe --del"
[ "$("$here/json-field" rec.data.lockrec.json mode)" = kprobe ] || fail "mode is not kprobe"
[ "$("$here/json-field" rec.data.lockrec.json probes.0.event)" = lockrec:_raw_spin_lock ] || fail "probes not in the JSON"
grep -q "mutex_lock_nested *not in this kernel" last.err || fail "no skipped-probe table"

echo "== --dry-run prints the same commands and runs none"
fresh_root ""
run_lockrec --dry-run -o dry.data -- true
expect_status 0 "dry run"
[ "$(cut -d' ' -f2 last.out | tr '\n' ' ')" = "probe record probe " ] || fail "dry run printed: $(cat last.out)"
[ ! -e perf.log ] || fail "--dry-run ran perf: $(cat perf.log)"

echo "== COMMAND fails: its status, probes removed"
fresh_root ""
run_lockrec -o fail.data -- sh -c 'exit 5'
expect_status 5 "failing COMMAND"
expect_no_probes "failing COMMAND"

echo "== perf record dies: reported as perf's failure, COMMAND stopped, probes removed"
fresh_root ""
FAKE_PERF_RECORD_DIES=1 run_lockrec -o dies.data -- sleep 30
expect_status 125 "perf dying"
grep -q "perf record exited with status 3" last.err || fail "perf's failure not reported"
expect_no_probes "perf dying"

echo "== perf record loses SIGINTs: lockrec asks again every 2 s and says what it waits for"
fresh_root ""
FAKE_PERF_LOSES_SIGINTS=3 run_lockrec -o lost.data -- true
expect_status 0 "perf losing three SIGINTs"
[ "$(grep -c "ignoring SIGINT number" last.err)" = 3 ] || fail "the fake perf did not lose three SIGINTs"
grep -q "stopped by SIGINT" last.err || fail "the fourth SIGINT did not stop perf record"
grep -q "^lockrec: still waiting for perf record (pid [0-9]*) to finish writing lost.data; SIGINT is sent again every 2 s ([0-9]* s so far)$" last.err ||
  fail "lockrec did not say what it waits for"
[ "$("$here/json-field" lost.data.lockrec.json command_status.exit_code)" = 0 ] || fail "no side file after lost SIGINTs"
expect_no_probes "perf losing SIGINTs"

echo "== perf record ends by itself: said, exit 125, COMMAND stopped, probes removed"
fresh_root ""
FAKE_PERF_RECORD_ENDS=1 run_lockrec -o ends.data -- sleep 30
expect_status 125 "perf ending by itself"
grep -q "perf record ended by itself (exited with status 0) while COMMAND ran, so lockrec stopped COMMAND" last.err ||
  fail "perf ending by itself not said"
expect_no_probes "perf ending by itself"

echo "== perf probe fails halfway: auto falls back to contention, --mode kprobe stops"
fresh_root ""
FAKE_PERF_PROBE_FAILS=1 run_lockrec -o fallback.data -- true
expect_status 0 "fallback"
grep -q "falling back to contention mode" last.err || fail "no fallback line"
grep -q -- "-e lock:contention_begin" perf.log || fail "fallback did not record contention"
expect_no_probes "fallback"
grep -q "no effect" last.err && fail "a note about options nobody gave"
fresh_root ""
FAKE_PERF_PROBE_FAILS=1 run_lockrec --trylock-result -o fallback.data -- true
expect_status 0 "fallback with --trylock-result"
grep -q "^lockrec: note: --trylock-result has no effect in contention mode" last.err ||
  fail "no line saying --trylock-result does nothing once fallen back to contention"
fresh_root ""
FAKE_PERF_PROBE_FAILS=1 run_lockrec --mode kprobe -o nofallback.data -- true
expect_status 125 "--mode kprobe with failing perf probe"
grep -q "perf probe refused every probe" last.err || fail "no line blaming perf probe"
expect_no_probes "--mode kprobe with failing perf probe"

echo "== kprobe-only options in contention mode: one line saying they do nothing"
fresh_root ""
run_lockrec --mode contention --release --trylock-result --vmlinux "$fixtures/README.md" -o contention.data -- true
expect_status 0 "--mode contention with kprobe options"
grep -q "^lockrec: note: --release, --trylock-result, --vmlinux have no effect in contention mode" last.err ||
  fail "no line saying the kprobe options do nothing in contention mode"
run_lockrec --mode contention --release --dry-run -- true
grep -q "^lockrec: note: --release has no effect in contention mode" last.err || fail "--dry-run does not say it either"
run_lockrec --release -o kprobe.data -- true
expect_status 0 "kprobe mode with --release"
grep -q "no effect" last.err && fail "kprobe mode says --release has no effect"
# auto on a kernel without kprobes is contention mode too (the tree is only read: no copy needed)
status=0
"$lockrec" --perf "$here/fake-perf" --system-root "$fixtures/no-kprobes" --release -o auto.data -- true \
  >last.out 2>last.err || status=$?
expect_status 0 "auto without kprobes, with --release"
grep -q "^lockrec: note: --release has no effect in contention mode" last.err ||
  fail "auto falling to contention does not say --release does nothing"

echo "== perf probe refuses one function: that one is skipped, the others recorded"
fresh_root ""
FAKE_PERF_REFUSE=_raw_spin_lock_bh run_lockrec -o refuse.data -- true
expect_status 0 "one refused probe"
grep -q "skipping lockrec:_raw_spin_lock_bh: perf probe refused it" last.err || fail "refused probe not reported"
grep -q -- "-e lockrec:_raw_spin_lock_irqsave -e lockrec:_raw_spin_trylock" perf.log ||
  fail "perf record did not take the accepted probes (and only those): $(grep ' record ' perf.log)"
[ "$(python3 -c 'import json, sys; print([s["reason"] for s in json.load(open(sys.argv[1]))["skipped"] if s["function"] == "_raw_spin_lock_bh"])' refuse.data.lockrec.json)" = "['perf probe refused it']" ] ||
  fail "refused probe not among the skipped in the JSON"
expect_no_probes "one refused probe"

echo "== perf probe names an event otherwise than planned: said plainly, probes removed"
fresh_root ""
FAKE_PERF_RETURN_SUFFIX=0 run_lockrec --mode kprobe --trylock-result -o names.data -- true
expect_status 125 "misnamed return probe"
grep -q "perf probe did not create lockrec:_raw_spin_trylock__return" last.err ||
  fail "missing event not named: $(cat last.err)"
grep -q -- " record " perf.log && fail "perf record ran on events that do not exist"
expect_no_probes "misnamed return probe"
fresh_root ""
run_lockrec --trylock-result -o names.data -- true
expect_status 0 "return probes named as perf 6.1 does"
grep -q -- "-e lockrec:mutex_trylock__return" perf.log || fail "return probe not recorded: $(grep ' record ' perf.log)"
expect_no_probes "return probes"

echo "== stale probes of a killed lockrec: the next run removes them, saying so"
fresh_root "p:lockrec/_raw_spin_lock _raw_spin_lock lock=%di:x64
$other_probe
r:lockrec/mutex_trylock__return mutex_trylock ret=\$retval
"
run_lockrec --dry-run -- true
[ "$(head -1 last.out)" = "$here/fake-perf probe --quiet --del 'lockrec:*'" ] || fail "dry run does not remove stale probes first"
run_lockrec -o stale.data -- true
expect_status 0 "run after a killed one"
grep -q "removing 2 probes of group lockrec left by an earlier lockrec" last.err || fail "stale probes not announced"
expect_no_probes "run after a killed one"
grep -qx "$other_probe" "$FAKE_TRACEFS/kprobe_events" || fail "another group's probe was removed"

echo "== stale probes and a contention recording: removed all the same, unless another lockrec holds them"
stale_probes="p:lockrec/_raw_spin_lock _raw_spin_lock lock=%di:x64
$other_probe
"
fresh_root "$stale_probes"
run_lockrec --mode contention --dry-run -- true
[ "$(cut -d' ' -f2,3,4 last.out | tr '\n' ' ')" = "probe --quiet --del record -o perf.data " ] ||
  fail "contention dry run does not remove stale probes first: $(cat last.out)"
run_lockrec --mode contention -o stale-contention.data -- true
expect_status 0 "contention run after a killed one"
grep -q "removing 1 probes of group lockrec left by an earlier lockrec" last.err || fail "stale probes not announced"
expect_no_probes "contention run after a killed one"
grep -qx "$other_probe" "$FAKE_TRACEFS/kprobe_events" || fail "another group's probe was removed"
[ "$(awk '{print $2}' perf.log | tr '\n' ' ')" = "--version probe record " ] || fail "wrong order: $(cat perf.log)"
grep -q -- "-e lock:contention_begin" perf.log || fail "did not record contention: $(cat perf.log)"
fresh_root "$stale_probes"
# flock(1) holds the lock as a running kprobe lockrec would, for as long as the lockrec inside runs.
status=0
flock "$work/root/run/lock/lockrec.lock" \
  "$lockrec" --perf "$here/fake-perf" --system-root "$work/root" --mode contention -o busy.data -- true \
  >last.out 2>last.err || status=$?
expect_status 0 "contention run beside a kprobe recording"
[ "$(lockrec_probes)" = 1 ] || fail "the running kprobe recording's probes were touched: $(cat "$FAKE_TRACEFS/kprobe_events")"
grep -q "removing" last.err && fail "announced removing probes it left alone"
grep -q -- " probe " perf.log && fail "ran perf probe beside a kprobe recording: $(cat perf.log)"

echo "== SIGINT while recording: probes removed"
fresh_root ""
rm -f progress && mkfifo progress
"$lockrec" --perf "$here/fake-perf" --system-root "$work/root" -o int.data -- sleep 30 2>progress &
pid=$!
exec 3<progress
while read -r line <&3; do case $line in *"recording in kprobe mode"*) break ;; esac; done
cat <&3 >last.err &
drain=$!
[ "$(lockrec_probes)" -gt 0 ] || fail "no probes while recording"
kill -INT "$pid"
status=0
wait "$pid" || status=$?
wait "$drain" || true
exec 3<&-
expect_status 130 "SIGINT"
expect_no_probes "SIGINT"

echo "== a second SIGINT ends COMMAND and the workers it started, which ignore SIGINT"
# COMMAND starts a worker and an orphan (its parent exits at once, so lockrec adopts it as a
# subreaper); both ignore SIGINT and SIGTERM, as stress-ng's workers do. COMMAND ignores them too.
fresh_root "" && : >last.err
rm -f worker.pid orphan.pid
start_lockrec -o workers.data -- bash -c 'trap "" INT TERM
  sleep 300 & echo $! >worker.pid
  bash -c "sleep 300 & echo \$! >orphan.pid" &
  wait'
for _ in $(seq 100); do [ -s worker.pid ] && [ -s orphan.pid ] && break; sleep 0.1; done
[ -s worker.pid ] && [ -s orphan.pid ] || fail "COMMAND did not start its workers"
kill -INT "$pid"
sleep 0.5
kill -0 "$(cat worker.pid)" 2>/dev/null || fail "the first SIGINT already ended the worker (it ignores SIGINT)"
kill -INT "$pid"
status=0
wait "$pid" || status=$?
# Survivors would hold lockrec's stderr (the fifo) open: end them before waiting for the drain.
survivors=""
for name in worker orphan; do
  for _ in $(seq 50); do kill -0 "$(cat $name.pid)" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$(cat $name.pid)" 2>/dev/null; then
    kill -KILL "$(cat $name.pid)"
    survivors+=" $name"
  fi
done
wait "$drain" || true
exec 3<&-
[ -z "$survivors" ] || fail "COMMAND's$survivors outlived the second SIGINT"
expect_status 137 "a second SIGINT"
expect_no_probes "a second SIGINT"

echo "== what can be refused is refused before perf starts, and perf.data is untouched"
fresh_root ""
echo "the user's recording" >keep.data
for bad in "--sample-every 0" "--max-size 5X" "-p 0"; do
  # shellcheck disable=SC2086
  run_lockrec $bad -o keep.data -- true
  expect_status 125 "$bad"
  [ "$(grep -c . last.err)" -le 2 ] || fail "$bad: more than the error and its --help line: $(cat last.err)"
done
run_lockrec -o keep.data -- no-such-command-lockrec-test
expect_status 127 "a COMMAND not on PATH"
grep -qx "lockrec: cannot run no-such-command-lockrec-test: not found in PATH; nothing was recorded" last.err ||
  fail "a missing COMMAND is not said: $(cat last.err)"
run_lockrec -o keep.data -- "$fixtures/README.md"
expect_status 126 "a COMMAND that is not executable"
mkdir -p a-directory
run_lockrec -o a-directory -- true
expect_status 125 "-o a directory"
grep -q "is a directory" last.err || fail "-o a directory is not refused: $(cat last.err)"
run_lockrec -o - -- true
expect_status 125 "-o -"
grep -q "^lockrec: -o - (a pipe-mode stream to stdout) is not supported" last.err || fail "-o - is not refused"
# perf itself fails on these with no message (on /dev/full) or an unclear one.
mkfifo a-fifo
for output in /dev/full a-fifo no-such-directory/x.data; do
  run_lockrec -o "$output" -- true
  expect_status 125 "-o $output"
  grep -Eq "^lockrec: -o $output( is a character device, not a file| is a fifo, not a file|: the directory no-such-directory does not exist)" last.err ||
    fail "-o $output is not refused with its reason: $(cat last.err)"
done
[ ! -e perf.log ] || fail "perf ran although lockrec refused: $(cat perf.log)"
[ "$(cat keep.data)" = "the user's recording" ] || fail "the user's perf.data was touched"
[ ! -e a-directory.old ] && [ ! -e ./-.kallsyms ] || fail "a refused run left files"

echo "== the side files follow their recording to FILE.old, as perf moves it"
fresh_root ""
run_lockrec -o moved.data -- sh -c 'exit 3'
expect_status 3 "first recording"
first_json=$(md5sum <moved.data.lockrec.json) first_kallsyms=$(md5sum <moved.data.kallsyms)
run_lockrec -o moved.data -- true
expect_status 0 "second recording"
[ -s moved.data.old ] || fail "the fake perf did not keep moved.data.old"
[ "$(md5sum <moved.data.old.lockrec.json)" = "$first_json" ] || fail "moved.data.old.lockrec.json is not the first run's"
[ "$(md5sum <moved.data.old.kallsyms)" = "$first_kallsyms" ] || fail "moved.data.old.kallsyms is not the first run's"
[ "$("$here/json-field" moved.data.lockrec.json command_status.exit_code)" = 0 ] || fail "moved.data's side file is not the second run's"
[ "$("$here/json-field" moved.data.old.lockrec.json command_status.exit_code)" = 3 ] || fail "the old side file is not the first run's"
# A previous recording without side files (perf record's own): FILE.old keeps none either.
echo "perf record's own" >moved.data && rm moved.data.kallsyms moved.data.lockrec.json
run_lockrec -o moved.data -- true
[ ! -e moved.data.old.kallsyms ] && [ ! -e moved.data.old.lockrec.json ] ||
  fail "FILE.old kept side files of an older recording"

echo "== -a: no COMMAND, system-wide until SIGINT or SIGTERM, exit 0, no command status"
for signal in INT TERM; do
  fresh_root "" && : >last.err
  start_lockrec -a -o all.data
  grep -q "system-wide; stop with Ctrl-C" last.err || fail "-a does not say how to stop it: $(cat last.err)"
  kill "-$signal" "$pid"
  finish_lockrec
  expect_status 0 "-a stopped by SIG$signal"
  [ "$("$here/json-field" all.data.lockrec.json command_status)" = null ] || fail "-a: command_status is not null"
  [ "$("$here/json-field" all.data.lockrec.json command)" = "[]" ] || fail "-a: command is not empty"
  expect_no_probes "-a"
done

echo "== -p PID without COMMAND: until the process ends (perf stops by itself then), exit 0"
fresh_root ""
FAKE_PERF_RECORD_ENDS=1 run_lockrec -p $$ -o pid.data
expect_status 0 "-p PID alone"
grep -q "^lockrec: process $$ ended; the recording is complete" last.err || fail "-p: the end is not said: $(cat last.err)"
grep -q -- "--pid $$" perf.log || fail "-p not passed to perf record"
[ "$("$here/json-field" pid.data.lockrec.json command_status)" = null ] || fail "-p: command_status is not null"
expect_no_probes "-p PID alone"

echo "== lockrec started by a script (background job, SIGINT ignored) still stops on SIGINT"
# A shell without job control starts background jobs with SIGINT ignored; check that it does here.
sigign=$(bash -c 'sleep 5 & grep ^SigIgn: /proc/$!/status; kill $!' | awk '{print $2}')
(( (16#$sigign & 2) != 0 )) || fail "the test's premise: bash -c did not start its background job with SIGINT ignored"
fresh_root "" && : >last.err && rm -f progress && mkfifo progress
bash -c '"$@" 2>progress & echo $! >lockrec.pid; wait $!' script "$lockrec" --perf "$here/fake-perf" \
  --system-root "$work/root" -o script.data -- sleep 30 &
script_shell=$!
exec 3<progress
while read -r line <&3; do case $line in *"recording in kprobe mode"*) break ;; esac; done
cat <&3 >>last.err &
drain=$!
kill -INT "$(cat lockrec.pid)"
status=0
wait "$script_shell" || status=$?
wait "$drain" || true
exec 3<&-
expect_status 130 "SIGINT to a lockrec started in the background by a script"
expect_no_probes "background lockrec"

echo "== lockrec killed outright: probes stay, --cleanup removes them"
fresh_root ""
rm -f progress && mkfifo progress
"$lockrec" --perf "$here/fake-perf" --system-root "$work/root" -o killed.data -- sleep 30 2>progress &
pid=$!
exec 3<progress
while read -r line <&3; do case $line in *"recording in kprobe mode"*) break ;; esac; done
cat <&3 >/dev/null &
drain=$!
command_pid=$(pgrep -P "$pid" -x sleep)
kill -KILL "$pid"
wait "$pid" || true
kill "$command_pid"
wait "$drain" || true  # ends once the fake perf, stopped by its parent-death SIGINT, closes stderr
exec 3<&-
[ "$(lockrec_probes)" -gt 0 ] || fail "probes vanished without lockrec"
run_lockrec --cleanup
expect_status 0 "--cleanup"
grep -q "removing .* probes of group lockrec" last.err || fail "--cleanup did not say what it removed"
expect_no_probes "--cleanup"
run_lockrec --cleanup
grep -q "no lockrec probes to remove" last.err || fail "--cleanup with nothing to do is not said"
echo PASS
