#!/usr/bin/env python3
"""The sharing report on the shared Debian 6.1 kprobe recording, with its vmlinux.

Checks the answers the issue states (cgroup_idr_lock shared by the two mkdirs and two kworkers,
the mkdirs' first stack through cgroup_apply_control_enable; ucounts_lock held by the one unshare,
3 acquisitions via _raw_spin_lock_irq, first stack through alloc_ucounts), that every holder's first
stack is the first stack `perf script -k vmlinux` shows for that pid and lock, and that the text and
JSON reports equal the golden files in fixtures/report/ (LOCKSCOPE_UPDATE_GOLDEN=1 rewrites them).
Exit 77 with the reason when the recording, the vmlinux or perf is missing."""
import json
import os
import subprocess
import sys

top = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(top, "tests/support"))
import perf_oracle  # noqa: E402
lockanalyze = sys.argv[1]


def skip(why):
    print("SKIPPED:", why)
    sys.exit(77)


def tool(name):
    out = subprocess.run([os.path.join(top, "tests/support", name)], capture_output=True, text=True)
    if out.returncode != 0:
        skip(f"{name} failed: {out.stderr.strip()}")
    return out.stdout.strip()


if subprocess.run(["which", "perf"], capture_output=True).returncode != 0:
    skip("perf is not installed (Debian: linux-perf)")
recording = tool("shared-recording")
vmlinux = tool("fetch-vmlinux")

LOCKS = {"cgroup_idr_lock": 0xffffffff83fd71cc, "ucounts_lock": 0xffffffff83f84768}
args = [lockanalyze, recording, "--vmlinux", vmlinux, "--min-holders", "1"]
for name in LOCKS:
    args += ["--lock", name]
report_json = subprocess.run(args + ["--format", "json"], check=True, capture_output=True, text=True).stdout
report_text = subprocess.run(args, check=True, capture_output=True, text=True).stdout
report = json.loads(report_json)
failures = []


def check(condition, what):
    print(("ok   " if condition else "FAIL ") + what)
    if not condition:
        failures.append(what)


locks = {lock["name"]: lock for lock in report["locks"]}
check(set(locks) == set(LOCKS), f"the report names exactly {sorted(LOCKS)}: {sorted(locks)}")

idr = locks.get("cgroup_idr_lock", {"holders": []})
comms = sorted(h["comm"] for h in idr["holders"])
check(len(idr["holders"]) == 4 and comms.count("mkdir") == 2 and
      sum(c.startswith("kworker") for c in comms) == 2,
      f"cgroup_idr_lock is shared by two mkdirs and two kworkers: {comms}")
for holder in idr["holders"]:
    if holder["comm"] == "mkdir":
        check(any(f["symbol"].startswith("cgroup_apply_control_enable+") for f in holder["first_stack"]),
              f"{holder['holder']}'s first stack goes through cgroup_apply_control_enable")

uc = locks.get("ucounts_lock", {"holders": []})
check(len(uc["holders"]) == 1 and uc["holders"][0]["comm"] == "unshare",
      "ucounts_lock is held by the one unshare process")
if uc["holders"]:
    h = uc["holders"][0]
    check(h["acquisitions"] == 3 and h["flavours"] == ["irq"], f"3 acquisitions, flavour irq: {h['acquisitions']} {h['flavours']}")
    check(len(h["first_stack"]) > 1 and h["first_stack"][1]["symbol"] == "alloc_ucounts+0x35",
          "its first stack goes through alloc_ucounts+0x35")

# The oracle: perf script -k vmlinux, first sample per (pid, lock).
oracle = perf_oracle.KernelStacks(recording, vmlinux, LOCKS.values())
for name, lock in locks.items():
    for holder in lock["holders"]:
        ours = [f["symbol"] for f in holder["first_stack"]]
        theirs = oracle.first_stack_of(holder, LOCKS[name])
        check(ours == theirs, f"{name} {holder['holder']}: first stack equals perf script -k vmlinux "
                              f"({len(ours)} frames)" + ("" if ours == theirs else f"\n  ours   {ours}\n  theirs {theirs}"))


# A --kaslr-offset that contradicts the recording's own kernel map (no KASLR: _text at
# 0xffffffff81000000) would name every address wrongly: refused in one line with both addresses.
moved = subprocess.run([lockanalyze, recording, "--vmlinux", vmlinux, "--kaslr-offset", "0x1000000"],
                       capture_output=True, text=True)
check(moved.returncode == 1 and moved.stderr.count("\n") == 1 and
      "--kaslr-offset 0x1000000 puts _text at 0xffffffff82000000, but the recording's kernel map says "
      "0xffffffff81000000" in moved.stderr,
      f"a --kaslr-offset against the recording's kernel map is refused: {moved.returncode} {moved.stderr!r}")


# The graph: graphviz's dot reads our dot output and renders both holders and locks.
import tempfile
with tempfile.TemporaryDirectory() as scratch:
    svg = os.path.join(scratch, "graph.svg")
    subprocess.run(args + ["--svg", svg, "-o", os.path.join(scratch, "report.txt")], check=True)
    rendered = open(svg).read() if os.path.exists(svg) else ""
    check("<svg" in rendered and "cgroup_idr_lock" in rendered and "unshare[200]" in rendered,
          "--svg renders the holder-lock graph with graphviz (holders and locks labelled)")


def normalized(text):
    return text.replace(recording, "RECORDING").replace(vmlinux, "VMLINUX")


golden_dir = os.path.join(top, "fixtures/report")
for name, text in (("shared-recording.txt", report_text), ("shared-recording.json", report_json)):
    path = os.path.join(golden_dir, name)
    if os.environ.get("LOCKSCOPE_UPDATE_GOLDEN"):
        os.makedirs(golden_dir, exist_ok=True)
        open(path, "w").write(normalized(text))
    golden = open(path).read() if os.path.exists(path) else None
    check(golden == normalized(text), f"{name} equals the golden file")
    if golden is not None and golden != normalized(text):
        import difflib
        for line in list(difflib.unified_diff(golden.splitlines(), normalized(text).splitlines(),
                                              "golden", "now", lineterm="", n=0))[:20]:
            print("  " + line[:300])

print(f"{len(failures)} failed")
sys.exit(1 if failures else 0)
