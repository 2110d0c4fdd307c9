#!/usr/bin/env bash
# Real recordings on this machine, checked with perf's own tools: lockrec records real contention,
# exits with COMMAND's status, leaves a complete file when interrupted or killed, and --dry-run records
# nothing. Needs root, perf, stress-ng and python3; exits 77 saying why when one is missing.
# Usage: real_recording.sh LOCKREC [LOCKANALYZE]
set -euo pipefail
set -m  # background jobs keep SIGINT, as they would at a terminal, so the SIGINT checks mean something
lockrec=$1
lockanalyze=${2:-}
here=$(cd "$(dirname "$0")" && pwd)

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; [ -f "${work:-}/last.err" ] && sed 's/^/  lockrec: /' "$work/last.err"; exit 1; }
[ "$(id -u)" = 0 ] || skip "recording system-wide needs root"
command -v perf >/dev/null || skip "perf is not installed (Debian: linux-perf)"
perf --version >/dev/null 2>&1 || skip "perf does not run on this kernel"
command -v stress-ng >/dev/null || skip "stress-ng is not installed"
command -v python3 >/dev/null || skip "python3 is not installed (setup.sh installs it)"

source "$here/../support/tracefs.sh"
# tracefs as lockrec and perf would find it; the fresh-machine case below unmounts it in a namespace.
require_tracefs

work=$(mktemp -d /tmp/lockrec-real.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"

tracefs=/sys/kernel/tracing
lockrec_probes() {  # how many lockrec kprobes the kernel has; none where it has no kprobe_events
  if [ -r "$tracefs/kprobe_events" ]; then grep -c '^[pr][0-9]*:lockrec/' "$tracefs/kprobe_events" || true; else echo 0; fi
}
expected_mode=contention
[ -e "$tracefs/kprobe_events" ] && expected_mode=kprobe
# One line per sample: the event name alone, no callchain lines.
sample_count() { perf script -i "$1" -F event 2>/dev/null | grep -c .; }
# lockanalyze events reads FILE (which perf script has read already) and gives one row per sample,
# as many as perf script finds. Without a built lockanalyze there is nothing to check.
lockanalyze_agrees() {  # FILE, what made it (for the message)
  [ -x "$lockanalyze" ] || return 0
  local samples rows
  samples=$(sample_count "$1") || true
  "$lockanalyze" events "$1" >"$1.csv" 2>"$1.lockanalyze.err" ||
    fail "$2: lockanalyze events cannot read the file: $(head -3 "$1.lockanalyze.err")"
  rows=$(grep -vc '^time_ns,' "$1.csv") || true
  [ "$rows" = "$samples" ] || fail "$2: lockanalyze events gives $rows rows, perf script $samples samples"
}

echo "== a recording of real contention: $expected_mode mode"
"$lockrec" -o stress.data -- stress-ng --fork 2 --timeout 3 >/dev/null 2>last.err || fail "lockrec exited $?"
[ "$("$here/json-field" stress.data.lockrec.json mode)" = "$expected_mode" ] || fail "mode is not $expected_mode"
if [ "$expected_mode" = contention ]; then
  grep -q "only contended acquisitions will be seen" last.err || fail "no line saying only contention is seen"
fi
perf script -i stress.data >script.txt 2>script.err || fail "perf script cannot read the recording"
samples=$(sample_count stress.data)
[ "$samples" -gt 0 ] || fail "perf script found no samples"
echo "perf script reads $samples samples ($(stat -c %s stress.data) bytes)"
[ "$("$here/json-field" stress.data.lockrec.json kernel.build_id)" = "$(perf buildid-list -k)" ] ||
  fail "build-id differs from perf buildid-list -k"
[ "$("$here/json-field" stress.data.lockrec.json kernel.release)" = "$(uname -r)" ] || fail "release differs from uname -r"
[ "$("$here/json-field" stress.data.lockrec.json perf_data_bytes)" = "$(stat -c %s stress.data)" ] ||
  fail "perf_data_bytes is not the finished recording's size"
[ "$("$here/json-field" stress.data.lockrec.json command_status.exit_code)" = 0 ] || fail "command status not recorded"
grep -q ' _raw_spin_lock$' stress.data.kallsyms || fail "kallsyms copy lacks _raw_spin_lock"
[ "$(grep ' _raw_spin_lock$' stress.data.kallsyms)" = "$(grep ' _raw_spin_lock$' /proc/kallsyms)" ] ||
  fail "kallsyms copy disagrees with /proc/kallsyms"
[ "$(lockrec_probes)" = 0 ] || fail "lockrec probes left behind"
if [ -x "$lockanalyze" ]; then
  rows=$("$lockanalyze" events stress.data 2>/dev/null | grep -vc '^time_ns,') || fail "lockanalyze events failed"
  [ "$rows" = "$samples" ] || fail "lockanalyze events gives $rows rows, perf script $samples samples"
  echo "lockanalyze events agrees: $rows rows"
  # The report finds stress.data.lockrec.json by itself and says how the recording was made.
  "$lockanalyze" stress.data >report.txt 2>report.err || fail "lockanalyze report failed: $(cat report.err)"
  mode_line=$(grep '^recorded by lockrec in ' report.txt) || fail "the report has no line from the side file"
  case $expected_mode in
    contention) [ "$mode_line" = "recorded by lockrec in contention mode: only contended acquisitions are seen" ] ;;
    kprobe) case $mode_line in "recorded by lockrec in kprobe mode: "[1-9]*" probes"*) ;; *) false ;; esac ;;
  esac || fail "the report's line is not of $expected_mode mode: $mode_line"
  echo "lockanalyze report: $mode_line"
  # Where each lock lives, against an oracle lockscope does not read: /proc/iomem's physical extent
  # of the kernel image (Kernel code .. Kernel bss), placed at the recorded _text. A lock inside it
  # is static whatever its name, one in a loaded module is module, and the rest dynamic.
  "$lockanalyze" stress.data --format json --min-holders 1 >report.json 2>/dev/null || fail "lockanalyze --format json failed"
  python3 - report.json /proc/iomem /proc/kallsyms /proc/modules <<'PY' || fail "a lock's storage disagrees with the kernel's layout"
import json, os, sys
report_path, iomem_path, kallsyms_path, modules_path = sys.argv[1:]
spans = {}
for line in open(iomem_path):
    span, _, name = line.strip().partition(" : ")
    if name in ("Kernel code", "Kernel bss"):
        start, end = (int(x, 16) for x in span.split("-"))
        spans[name] = (start, end)
text = next(int(line.split()[0], 16) for line in open(kallsyms_path) if line.split()[2] == "_text")
image_end = text + spans["Kernel bss"][1] + 1 - spans["Kernel code"][0]
modules = []  # a kernel without module support has no /proc/modules
for line in open(modules_path) if os.path.exists(modules_path) else []:
    fields = line.split()
    modules.append((int(fields[5], 16), int(fields[5], 16) + int(fields[1])))
locks = json.load(open(report_path))["locks"]
if not locks:
    sys.exit("no locks in the report to check")
wrong = 0
for lock in locks:
    address = int(lock["address"], 16)
    expected = ("static" if text <= address < image_end else
                "module" if any(start <= address < end for start, end in modules) else "dynamic")
    if lock["storage"] != expected and not (expected == "dynamic" and lock["storage"] == "per-cpu"):
        print(f"{lock['address']}: storage {lock['storage']}, the kernel's layout says {expected}")
        wrong += 1
print(f"storage of {len(locks)} locks checked against /proc/iomem (image {text:#x}-{image_end:#x}): {wrong} wrong")
sys.exit(1 if wrong else 0)
PY
else
  echo "note: no lockanalyze built here; checked against perf script only"
fi

echo "== a fresh machine, tracefs not mounted: lockrec mounts it, says so, records; the machine's mounts stay"
if command -v unshare >/dev/null && command -v findmnt >/dev/null; then
  mounts_before=$(findmnt -rn -o TARGET,FSTYPE | sort)
  # A private mount namespace (unshare's default propagation) with tracefs and debugfs (whose
  # tracing/ is tracefs too) unmounted, as on a machine that has not traced anything since boot.
  status=0
  unshare -m sh -c 'umount -l /sys/kernel/tracing 2>/dev/null; umount -l /sys/kernel/debug 2>/dev/null
                    [ ! -e /sys/kernel/tracing/events ] || { echo "tracefs still mounted" >&2; exit 99; }
                    exec "$@"' unmounted "$lockrec" -o fresh.data -- true 2>last.err || status=$?
  [ "$status" = 0 ] || fail "lockrec with tracefs unmounted exited $status"
  grep -q "^lockrec: tracefs was not mounted; mounted it at /sys/kernel/tracing, as perf does$" last.err ||
    fail "lockrec did not say it mounted tracefs"
  perf script -i fresh.data -F event >/dev/null 2>&1 || fail "perf script cannot read the recording made after mounting tracefs"
  lockanalyze_agrees fresh.data "tracefs mounted by lockrec"
  [ "$(findmnt -rn -o TARGET,FSTYPE | sort)" = "$mounts_before" ] || fail "the machine's own mounts changed"
else
  echo "note: no unshare or findmnt (Debian: util-linux), the fresh-machine case is not checked"
fi

echo "== --sample-every 4 keeps one event in four, and the report says its counts are samples"
# perf record -c alone keeps every tracepoint hit (PERF_SAMPLE_PERIOD set): the kernel must see
# sample_period 4 without the PERIOD bit. (A loaded machine once saw only 48 contentions in 3 s:
# one in four of 4 s leaves some.)
"$lockrec" --sample-every 4 -o sampled.data -- stress-ng --pthread 4 --timeout 4 >/dev/null 2>last.err ||
  fail "lockrec --sample-every 4 exited $?"
perf evlist -v -i sampled.data 2>/dev/null | grep -v dummy >sampled.evlist
grep -q "sample_period, sample_freq }: 4," sampled.evlist && ! grep -q "sample_type: [A-Z|]*PERIOD" sampled.evlist ||
  fail "the events are not sampled one in four: $(cat sampled.evlist)"
if [ -x "$lockanalyze" ]; then
  "$lockanalyze" sampled.data >/dev/null 2>sampled.err || fail "lockanalyze cannot read the sampled recording"
  read -r kept stand_for < <(sed -n 's/.*: \([0-9]*\) lock events are samples that stand for \([0-9]*\) by.*/\1 \2/p' sampled.err)
  [ -n "${kept:-}" ] && [ "$stand_for" = "$((kept * 4))" ] ||
    fail "the report does not say its samples stand for four events each: $(cat sampled.err)"
fi

echo "== exit status is COMMAND's"
status=0
"$lockrec" -o seven.data -- sh -c 'exit 7' 2>last.err || status=$?
[ "$status" = 7 ] || fail "lockrec -- sh -c 'exit 7' exited $status"
[ "$("$here/json-field" seven.data.lockrec.json command_status.exit_code)" = 7 ] || fail "exit 7 not in the JSON"
status=0
"$lockrec" -o missing.data -- /nonexistent/command 2>last.err || status=$?
[ "$status" = 127 ] || fail "a missing COMMAND gave $status, not 127"

echo "== a perf that loses the first SIGINT: lockrec asks again, the recording ends complete"
status=0
"$lockrec" --perf "$here/perf-losing-first-sigint" -o lost.data -- sleep 1 2>last.err || status=$?
[ "$status" = 0 ] || fail "lockrec with a perf that loses a SIGINT exited $status, not 0"
grep -q "SIGINT number 1 lost on purpose" last.err || fail "the wrapper did not lose a SIGINT: $(cat last.err)"
perf script -i lost.data -F event >/dev/null 2>&1 || fail "perf script cannot read the file after a lost SIGINT"
lockanalyze_agrees lost.data "lost SIGINT"
[ "$("$here/json-field" lost.data.lockrec.json command_status.exit_code)" = 0 ] || fail "no side file after a lost SIGINT"

echo "== perf's own failure is reported apart from COMMAND's status"
status=0
"$lockrec" -o nocgroup.data --cgroup lockrec-no-such-cgroup -- sh -c 'exit 7' 2>last.err || status=$?
[ "$status" = 125 ] || fail "perf failing gave $status, not 125"
grep -q "perf record .* before COMMAND started" last.err || fail "no line blaming perf"

echo "== perf ending by itself (--max-size) is said and exits 125, not taken for an interrupt"
status=0
"$lockrec" -o tiny.data --max-size 1K -- touch tiny.ran 2>last.err || status=$?
[ "$status" = 125 ] || fail "perf stopping at --max-size during its startup records gave $status, not 125"
grep -q "^lockrec: perf record ended by itself (exited with status 0) before COMMAND started, so COMMAND was not run; perf stops at --max-size 1K" last.err ||
  fail "no line saying perf ended by itself before COMMAND started"
[ ! -e tiny.ran ] || fail "COMMAND ran although perf had ended"
perf script -i tiny.data -F event >/dev/null 2>&1 || fail "perf script cannot read the file perf ended by itself"
# Mid-run: a limit some 300 KB past what perf writes for an empty recording, and a COMMAND that
# execs short processes (each one is a few perf records) for up to a minute until it is stopped.
limit_kb=$(($(stat -c %s seven.data) / 1024 + 300))
status=0
"$lockrec" -o full.data --max-size "${limit_kb}K" -- \
  sh -c 'end=$(($(date +%s) + 60)); while [ "$(date +%s)" -lt "$end" ]; do /bin/true; done; touch full.finished' \
  2>last.err || status=$?
[ "$status" = 125 ] || fail "perf stopping at --max-size ${limit_kb}K mid-recording gave $status, not 125"
grep -q "^lockrec: perf record ended by itself (exited with status 0) while COMMAND ran, so lockrec stopped COMMAND" last.err ||
  fail "no line saying perf ended by itself while COMMAND ran"
[ ! -e full.finished ] || fail "COMMAND ran to its end although perf had ended"
perf script -i full.data -F event >/dev/null 2>&1 || fail "perf script cannot read the file perf ended at --max-size"
[ "$("$here/json-field" full.data.lockrec.json command_status.signal)" = 15 ] || fail "COMMAND's SIGTERM not in the JSON"

# Starts `lockrec -o FILE -- sleep 30` in the background and returns once it is recording; sets pid
# (lockrec's) and drain (the reader that copies its stderr to last.err through fd 3 until it ends).
start_recording() {  # FILE
  local line
  rm -f progress && mkfifo progress
  "$lockrec" -o "$1" -- sleep 30 2>progress &
  pid=$!
  exec 3<progress
  # Wait (no timer) for the line lockrec prints once perf records and COMMAND runs.
  while read -r line <&3; do
    echo "$line" >>last.err
    case $line in *"recording in "*) break ;; esac
  done
  cat <&3 >>last.err &
  drain=$!
}

interrupt() {  # signal, expected exit status
  local signal=$1 expected=$2 status=0
  start_recording "$signal.data"
  kill "-$signal" "$pid"
  wait "$pid" || status=$?
  wait "$drain" || true
  exec 3<&-
  [ "$status" = "$expected" ] || fail "SIG$signal to lockrec: exit $status, not $expected"
  perf script -i "$signal.data" -F event >/dev/null 2>&1 || fail "perf script cannot read the file left by SIG$signal"
  lockanalyze_agrees "$signal.data" "SIG$signal"
  [ "$(lockrec_probes)" = 0 ] || fail "lockrec probes left behind after SIG$signal"
  [ "$("$here/json-field" "$signal.data.lockrec.json" command_status.signal)" = "$((expected - 128))" ] ||
    fail "COMMAND's signal not in the JSON"
}
echo "== SIGINT stops the recording cleanly"
interrupt INT 130
echo "== SIGTERM and SIGHUP too, passed on to COMMAND"
interrupt TERM 143
interrupt HUP 129

echo "== a second lockrec on the same output refuses, and leaves the first one's recording alone"
start_recording same.data
status=0
"$lockrec" -o "$work/same.data" -- true 2>second.err || status=$?
[ "$status" = 125 ] || fail "a second lockrec on the same -o exited $status, not 125: $(cat second.err)"
grep -q "^lockrec: another lockrec (pid $pid) is recording to $work/same.data; give this one another -o FILE" second.err ||
  fail "the second lockrec did not say which lockrec holds the output: $(cat second.err)"
[ ! -e same.data.old ] || fail "the second lockrec moved the first one's recording to same.data.old"
status=0
kill -INT "$pid"
wait "$pid" || status=$?
wait "$drain" || true
exec 3<&-
[ "$status" = 130 ] || fail "the first lockrec exited $status after SIGINT, not 130"
lockanalyze_agrees same.data "the first of two lockrecs on one output"

echo "== lockrec killed outright: perf, stopped by its parent-death SIGINT, still finishes the file"
# A finished recording to the same name first: its side files must not be paired with the
# recording the killed lockrec leaves (they follow the old recording to killed.data.old).
"$lockrec" -o killed.data -- true 2>last.err || fail "the recording before the killed one failed"
start_recording killed.data
perf_pid=$(pgrep -P "$pid" -x perf) || fail "no perf running under lockrec"
command_pid=$(pgrep -P "$pid" -x sleep) || fail "no COMMAND running under lockrec"
stress-ng --fork 2 --timeout 2 >/dev/null 2>&1  # contention to record before the kill (system-wide)
kill -KILL "$pid"
wait "$pid" || true
# perf is no child of this shell: wait for it by polling, 30 s at most.
for _ in $(seq 300); do kill -0 "$perf_pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$perf_pid" 2>/dev/null && { kill -KILL "$perf_pid"; fail "perf still runs 30 s after lockrec was killed"; }
# COMMAND is left running when lockrec is killed (docs/recorder.md); the test ends it, which also
# lets the drain end: it holds the fifo open.
kill -0 "$command_pid" 2>/dev/null || fail "COMMAND did not outlive the killed lockrec"
kill "$command_pid"
wait "$drain" || true
exec 3<&-
perf script -i killed.data -F event >/dev/null 2>killed.err ||
  fail "perf script cannot read the file left by a killed lockrec: $(head -3 killed.err)"
# Samples are not required: contention in those 2 s is up to the scheduler (the ASan build once saw
# none). An unfinished file is what perf script refuses ("data size field is 0"), checked above.
samples=$(sample_count killed.data) || true
lockanalyze_agrees killed.data "killed lockrec"
[ ! -e killed.data.lockrec.json ] && [ ! -e killed.data.kallsyms ] ||
  fail "side files of the previous recording lie beside the killed lockrec's recording"
[ -e killed.data.old.lockrec.json ] && [ -e killed.data.old.kallsyms ] || fail "the previous recording lost its side files"
echo "perf finished the file: perf script reads $samples samples"

echo "== Ctrl-C at a terminal: the terminal signals COMMAND and lockrec, lockrec stops perf"
if command -v script >/dev/null; then
  # script(1) gives lockrec a pseudo-terminal; a ^C typed into it is a real terminal interrupt.
  # lockrec runs as script's child itself (exec) and script -e hands back its exit status: a shell
  # around it would share the terminal's process group, and dash, script's default $SHELL on a
  # machine without one set, dies of that same ^C before it could report anything.
  coproc TERMINAL { SHELL=/bin/sh script -qfec "exec $lockrec -o ctrlc.data -- sleep 30" /dev/null; }
  # bash unsets TERMINAL and TERMINAL_PID as soon as the coprocess exits: keep copies.
  terminal_pid=$TERMINAL_PID
  exec {terminal_out}<&"${TERMINAL[0]}" {terminal_in}>&"${TERMINAL[1]}"
  while read -r line <&"$terminal_out"; do
    case $line in *"recording in "*) break ;; esac
  done
  printf '\003' >&"$terminal_in"
  cat <&"$terminal_out" >/dev/null
  exec {terminal_out}<&- {terminal_in}>&-
  terminal_status=0
  wait "$terminal_pid" || terminal_status=$?
  [ "$terminal_status" = 130 ] || fail "Ctrl-C: lockrec exited with $terminal_status, not 130"
  perf script -i ctrlc.data -F event >/dev/null 2>&1 || fail "perf script cannot read the file left by Ctrl-C"
  lockanalyze_agrees ctrlc.data "Ctrl-C"
  [ "$("$here/json-field" ctrlc.data.lockrec.json command_status.signal)" = 2 ] || fail "Ctrl-C not in the JSON"
  [ "$(lockrec_probes)" = 0 ] || fail "lockrec probes left behind after Ctrl-C"
else
  echo "note: no script(1) (Debian: bsdutils), terminal Ctrl-C not checked"
fi

echo "== --dry-run prints the commands and records nothing"
"$lockrec" --dry-run -o dry.data -- stress-ng --fork 2 --timeout 3 >dry.out 2>last.err || fail "dry run failed"
grep -q '^perf record -o dry.data ' dry.out || fail "no perf record line: $(cat dry.out)"
[ ! -e dry.data ] || fail "--dry-run wrote dry.data"
[ "$(lockrec_probes)" = 0 ] || fail "--dry-run left probes"
echo "PASS"
