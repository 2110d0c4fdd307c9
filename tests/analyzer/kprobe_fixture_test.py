#!/usr/bin/env python3
"""The committed real kprobe recording (fixtures/kprobe/, made by the guest test on Debian's stock
6.1 kernel with lockrec -z --release --trylock-result over one round of its workload) read without a
guest: `lockanalyze events` agrees with perf script row by row, the report names ucounts_lock and
cgroup_idr_lock with first stacks equal to `perf script -k vmlinux`, and the named locks' JSON report
and the text report equal the golden files beside the recording.

Usage: kprobe_fixture_test.py LOCKANALYZE
       kprobe_fixture_test.py --update LOCKANALYZE NEW_RECORDING VMLINUX   (tests/guest/run does this)
Exit 77 with the reason when perf or the vmlinux is missing."""
import json
import os
import shutil
import subprocess
import sys

top = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(top, "tests/support"))
import perf_oracle  # noqa: E402

fixture_dir = os.path.join(top, "fixtures/kprobe")
recording = os.path.join(fixture_dir, "lockrec-release-trylock.perf.data")
golden_json = os.path.join(fixture_dir, "lockrec-release-trylock.named-locks.json")
golden_text = os.path.join(fixture_dir, "lockrec-release-trylock.report.txt")
NAMED_LOCKS = ("ucounts_lock", "cgroup_idr_lock")


def skip(why):
    print("SKIPPED:", why)
    sys.exit(77)


update = sys.argv[1] == "--update"
lockanalyze = sys.argv[2] if update else sys.argv[1]
if shutil.which("perf") is None:
    skip("perf is not installed (Debian: linux-perf)")
if update:
    os.makedirs(fixture_dir, exist_ok=True)
    if os.path.realpath(sys.argv[3]) != os.path.realpath(recording):
        shutil.copyfile(sys.argv[3], recording)
    vmlinux = sys.argv[4]
else:
    header = subprocess.run(["perf", "report", "--header-only", "-i", recording], capture_output=True, text=True).stdout
    abi = next((line.split(":", 1)[1].strip() for line in header.splitlines() if line.startswith("# os release")), "")
    fetched = subprocess.run([os.path.join(top, "tests/support/fetch-vmlinux"), abi], capture_output=True, text=True)
    if fetched.returncode != 0:
        skip(f"no vmlinux for the fixture's kernel {abi!r}: {fetched.stderr.strip()}")
    vmlinux = fetched.stdout.strip()

failures = []


def check(condition, what, detail=""):
    print(("ok   " if condition else "FAIL ") + what + ("" if condition or not detail else f"\n     {detail}"))
    if not condition:
        failures.append(what)


size_mb = os.path.getsize(recording) / 1e6
check(size_mb <= 5, f"the fixture stays small ({size_mb:.2f} MB, at most 5)")

compare = subprocess.run([sys.executable, os.path.join(top, "tests/reader/compare_with_perf_script.py"),
                          "--lockanalyze", lockanalyze, "--perf-data", recording, "--min-rows", "1000"],
                         capture_output=True, text=True)
check(compare.returncode == 0, "lockanalyze events agrees with perf script row by row",
      (compare.stdout + compare.stderr).strip()[-800:])

args = [lockanalyze, recording, "--vmlinux", vmlinux, "--format", "json"]
named = json.loads(subprocess.run(args + ["--min-holders", "1"] + [a for n in NAMED_LOCKS for a in ("--lock", n)],
                                  check=True, capture_output=True, text=True).stdout)
perf_oracle.check_first_stacks(check, named["locks"], recording, vmlinux, NAMED_LOCKS)

# Golden files: the JSON report of the two named locks, and the text report users read first (its top 5 locks).
named_json = subprocess.run(args + ["--min-holders", "1"] + [a for n in NAMED_LOCKS for a in ("--lock", n)],
                            check=True, capture_output=True, text=True).stdout
text = subprocess.run(args[:-2] + ["--top", "5"], check=True, capture_output=True, text=True).stdout
for golden, output in ((golden_json, named_json), (golden_text, text)):
    normalized = output.replace(recording, "RECORDING").replace(vmlinux, "VMLINUX")
    if update:
        with open(golden, "w") as f:
            f.write(normalized)
    expected = open(golden).read() if os.path.exists(golden) else None
    check(expected == normalized, f"{os.path.basename(golden)} equals the report "
                                  "(LOCKSCOPE_UPDATE_FIXTURE=1 tests/guest/run renews the fixture and its golden files)")
    if expected is not None and expected != normalized:
        import difflib
        for line in list(difflib.unified_diff(expected.splitlines(), normalized.splitlines(), "golden", "now",
                                              lineterm="", n=0))[:20]:
            print("  " + line[:300])
print(f"{len(failures)} failed")
sys.exit(1 if failures else 0)
