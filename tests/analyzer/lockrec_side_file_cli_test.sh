#!/usr/bin/env bash
# lockanalyze's report picks up lockrec's FILE.lockrec.json beside a recording without being told:
# the text header says how the recording was made, the JSON has recording.lockrec, and a side file
# that is not lockrec's (not JSON, a wrong type, a newer format, another kernel) stops the report
# with one `lockanalyze:` line naming it. With the Debian 6.1 vmlinux at hand, the side file's
# build-id is also what the vmlinux is checked against when perf.data has none.
# Usage: lockrec_side_file_cli_test.sh MAKE_LOCKDEP_RECORDING LOCKANALYZE
set -euo pipefail
make_recording=$1
lockanalyze=$2
cache=${LOCKSCOPE_CACHE:-/var/cache/lockscope}
vmlinux=$cache/usr/lib/debug/boot/vmlinux-6.1.0-56-amd64

work=$(mktemp -d /tmp/lockscope-side-file.XXXXXX)
trap 'rm -rf "$work"' EXIT
failures=0
check() {  # WHAT CONDITION-STATUS
  if [ "$2" = 0 ]; then echo "ok   $1"; else echo "FAIL $1"; failures=$((failures + 1)); fi
}

# A small lockrec-style recording (os-release 6.1.0-test, no build-id) with its FILE.kallsyms.
recording=$work/rec.perf.data
side=$recording.lockrec.json
"$make_recording" "$recording"

# The side file lockrec writes, in kprobe or contention mode, with some fields replaced (PATCH's
# kernel object replaces only the kernel fields it has).
write_side() {  # MODE [PATCH-JSON]
  local patch=${2:-}
  [ -n "$patch" ] || patch='{}'
  python3 - "$side" "$1" "$patch" <<'PY'
import json, sys
path, mode, patch = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
kprobe = mode == "kprobe"
probes = ["_raw_spin_lock", "_raw_spin_unlock", "mutex_lock"] if kprobe else []
side = {
    "format_version": 1, "perf_data": "rec.perf.data", "kallsyms": "rec.perf.data.kallsyms", "mode": mode,
    "kernel": {"release": "6.1.0-test", "machine": "x86_64", "build_id": None},
    "modules": [], "events": [],
    "perf_record": ["perf", "record"], "perf_probe": ["perf", "probe"] if kprobe else [],
    "command": ["insmod", "lockscope_lockdep.ko"], "command_status": {"exit_code": 0},
    "probes": [{"event": "lockrec:" + f, "definition": "", "function": f, "kind": "spinlock",
                "flavour": "plain", "role": "acquire"} for f in probes],
    "skipped": [{"function": f, "kind": "spinlock", "flavour": "plain", "role": role, "reason": reason}
                for f, role, reason in ([("_raw_spin_lock_nested", "acquire", "not in this kernel"),
                                         ("mutex_lock_nested", "acquire", "not in this kernel"),
                                         ("_raw_spin_trylock", "trylock-return", "needs --trylock-result")]
                                        if kprobe else [])],
}
for key, value in patch.items():
    if key == "kernel":  # one of its fields
        side[key].update(value)
    else:
        side[key] = value
json.dump(side, open(path, "w"), indent=2)
PY
}

# The header as the report prints it: the lines before the first blank one.
"$lockanalyze" "$recording" >"$work/plain.txt"
"$lockanalyze" "$recording" --format json >"$work/plain.json"
! grep -q "recorded by lockrec" "$work/plain.txt" &&
  python3 -c 'import json,sys; sys.exit("lockrec" in json.load(open(sys.argv[1]))["recording"])' "$work/plain.json"
check "without a side file: no lockrec line, no recording.lockrec" $?

write_side kprobe
"$lockanalyze" "$recording" >"$work/kprobe.txt"
sed -n '3p' "$work/kprobe.txt" >"$work/kprobe.line"
expected="recorded by lockrec in kprobe mode: 3 probes (not in this kernel: _raw_spin_lock_nested, mutex_lock_nested; needs --trylock-result: _raw_spin_trylock)"
status=0
[ "$(cat "$work/kprobe.line")" = "$expected" ] && sed -n '2p' "$work/kprobe.txt" | grep -q '^kernel 6.1.0-test,' &&
  sed -n '4p' "$work/kprobe.txt" | grep -q '^symbols: ' || status=$?
check "kprobe mode: the third header line counts probes and names the skipped ones" $status
[ "$status" = 0 ] || { echo "  got:"; sed -n '1,5p' "$work/kprobe.txt" | sed 's/^/    /'; }

"$lockanalyze" "$recording" --format json >"$work/kprobe.json"
python3 - "$work/kprobe.json" "$side" <<'PY'
import json, sys
got = json.load(open(sys.argv[1]))["recording"]["lockrec"]
expected = {
    "file": sys.argv[2], "mode": "kprobe", "kernel_release": "6.1.0-test", "build_id": None,
    "probes": ["lockrec:_raw_spin_lock", "lockrec:_raw_spin_unlock", "lockrec:mutex_lock"],
    "skipped": [{"function": "_raw_spin_lock_nested", "role": "acquire", "reason": "not in this kernel"},
                {"function": "mutex_lock_nested", "role": "acquire", "reason": "not in this kernel"},
                {"function": "_raw_spin_trylock", "role": "trylock-return", "reason": "needs --trylock-result"}],
    "command": ["insmod", "lockscope_lockdep.ko"], "command_status": {"exit_code": 0},
}
print("recording.lockrec:", json.dumps(got))
sys.exit(0 if got == expected else 1)
PY
check "kprobe mode: recording.lockrec in the JSON report" $?

write_side contention '{"command_status": {"signal": 2}}'
"$lockanalyze" "$recording" >"$work/contention.txt"
"$lockanalyze" "$recording" --format json >"$work/contention.json"
[ "$(sed -n '3p' "$work/contention.txt")" = \
  "recorded by lockrec in contention mode: only contended acquisitions are seen" ] &&
  python3 - "$work/contention.json" <<'PY'
import json, sys
got = json.load(open(sys.argv[1]))["recording"]["lockrec"]
sys.exit(0 if (got["mode"], got["probes"], got["skipped"], got["command_status"]) ==
         ("contention", [], [], {"signal": 2}) else 1)
PY
check "contention mode: the header says only contended acquisitions are seen" $?

# A side file that is not lockrec's: exit 1, nothing on stdout, one line on stderr naming the file.
refused() {  # WHAT EXPECTED-IN-MESSAGE
  local status=0
  "$lockanalyze" "$recording" >"$work/refused.out" 2>"$work/refused.err" || status=$?
  [ "$status" = 1 ] && [ ! -s "$work/refused.out" ] && [ "$(wc -l <"$work/refused.err")" = 1 ] &&
    grep -q "^lockanalyze: $side: .*$2" "$work/refused.err"
  check "$1: exit $status, $(cat "$work/refused.err")" $?
}
printf 'this is not JSON\n' >"$side"
refused "not JSON" "not JSON: .*remove it or record again"
write_side kprobe '{"probes": {"event": "lockrec:_raw_spin_lock"}}'
refused "probes of a wrong type" "probes: expected an array, found an object; it was written by lockrec"
write_side kprobe '{"kernel": {"build_id": 42}}'
refused "a build-id of a wrong type" "kernel.build_id: expected a string, found an integer"
write_side kprobe '{"format_version": 2}'
refused "a newer format_version" "format_version 2 is newer than this lockanalyze reads (1); .*update lockscope"
write_side kprobe '{"kernel": {"release": "6.12.0-other"}}'
refused "a side file of another kernel" "its kernel release 6.12.0-other is not the recording's (6.1.0-test)"
size=$(stat -c %s "$recording")
write_side kprobe "{\"perf_data_bytes\": $((size + 1))}"
refused "a side file written for a recording of another size" \
  "it was written for a recording of $((size + 1)) bytes, and the recording has $size; it belongs to another recording"
write_side kprobe '{"perf_data_bytes": "large"}'
refused "a size of a wrong type" "perf_data_bytes: expected an integer, found a string"
write_side kprobe "{\"perf_data_bytes\": $size}"
"$lockanalyze" "$recording" >/dev/null 2>&1
check "a side file written for this recording's size is used" $?
rm "$side"
mkdir "$side"
refused "a directory in its place" "not a regular file"
rmdir "$side"

# The build-id: perf.data here has none, so the vmlinux is checked against the side file's.
if [ -r "$vmlinux" ]; then
  write_side kprobe '{"kernel": {"build_id": "00112233445566778899aabbccddeeff00112233"}}'
  # Another kernel's vmlinux names every address wrongly: refused, one line, unless forced.
  status=0
  "$lockanalyze" "$recording" --vmlinux "$vmlinux" >/dev/null 2>"$work/build-id.err" || status=$?
  [ "$status" = 1 ] && [ "$(grep -c . "$work/build-id.err")" = 1 ] &&
    grep -q "^lockanalyze: $vmlinux: is not the recorded kernel's vmlinux: its build-id differs from the recording's 00112233445566778899aabbccddeeff00112233; .*--force-vmlinux" \
      "$work/build-id.err"
  check "the side file's build-id is checked against the vmlinux, and another kernel's is refused" $?
  "$lockanalyze" "$recording" --vmlinux "$vmlinux" --force-vmlinux >"$work/build-id.txt" 2>"$work/build-id.err"
  grep -q "^lockanalyze: warning: --force-vmlinux: $vmlinux is not the recorded kernel's" "$work/build-id.err" &&
    grep -q "^note: build-id mismatch: the recording's kernel has 00112233445566778899aabbccddeeff00112233 but $vmlinux has " \
      "$work/build-id.txt"
  check "--force-vmlinux uses it, saying so on stderr and in the header" $?
  actual=$(sed -n "s/^note: build-id mismatch: .* but .* has \([0-9a-f]*\);.*/\1/p" "$work/build-id.txt")
  write_side kprobe "{\"kernel\": {\"build_id\": \"$actual\"}}"
  "$lockanalyze" "$recording" --vmlinux "$vmlinux" >"$work/build-id-same.txt"
  [ -n "$actual" ] && ! grep -q "build-id mismatch" "$work/build-id-same.txt"
  check "the vmlinux's own build-id in the side file: no mismatch note" $?
else
  echo "skip the build-id checks: no $vmlinux (tests/support/fetch-vmlinux fetches it)"
fi

[ "$failures" = 0 ]
