#!/usr/bin/env python3
"""Host-side checks of what one guest boot left in its share directory.

Usage: check_guest.py LOCKANALYZE SHARE VMLINUX STEP...   (STEP: main, sigint, sigkill_perf, slowdown, kaslr)

Oracles are perf's own tools on the same files: `perf script` for the events, `perf script -k vmlinux`
for the first stacks. Prints one line per check and the measured figures; exits 1 if any check failed.
"""
import json
import os
import re
import subprocess
import sys

here = os.path.dirname(os.path.abspath(__file__))
top = os.path.dirname(os.path.dirname(here))
sys.path.insert(0, os.path.join(top, "tests/support"))
import perf_oracle  # noqa: E402

lockanalyze, share, vmlinux = sys.argv[1:4]
steps = sys.argv[4:]
failures = []
# Named locks the workload reaches, and the flavour each is taken with (see steps.sh).
NAMED_LOCKS = {"ucounts_lock": "irq", "cgroup_idr_lock": "bh"}


def check(condition, what, detail=""):
    print(("ok   " if condition else "FAIL ") + what + ("" if condition or not detail else f"\n     {detail}"))
    if not condition:
        failures.append(what)
    return condition


def path(name):
    return os.path.join(share, name)


def text_of(name, default=""):
    try:
        with open(path(name), errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return default


def no_probes_left(step):
    probes = text_of(f"{step}.probes", "(missing)")
    events = text_of(f"{step}.kprobe_events", "(missing)")
    check("lockrec" not in probes and "(missing)" not in probes,
          f"{step}: perf probe -l lists no lockrec probe afterwards", probes.strip()[:300])
    check("lockrec" not in events and "(missing)" not in events,
          f"{step}: kprobe_events holds no lockrec probe afterwards", events.strip()[:300])


def status_of(step):
    return text_of(f"{step}.status").strip()


def report(recording, extra=()):
    args = [lockanalyze, recording, "--vmlinux", vmlinux, "--format", "json", "--min-holders", "1", *extra]
    result = subprocess.run(args, capture_output=True, text=True)
    if not check(result.returncode == 0, f"lockanalyze report on {os.path.basename(recording)}", result.stderr.strip()[-500:]):
        return {"locks": [], "recording": {}}
    return json.loads(result.stdout)


def check_named_locks(recording, label):
    """ucounts_lock and cgroup_idr_lock named, shared, and their first stacks as perf script -k shows."""
    named = report(recording, [arg for name in NAMED_LOCKS for arg in ("--lock", name)])
    locks = perf_oracle.check_first_stacks(check, named["locks"], recording, vmlinux, NAMED_LOCKS, f"{label}: ")
    for name, flavour in NAMED_LOCKS.items():
        holders = locks.get(name, {"holders": []})["holders"]
        check(len(holders) >= 2, f"{label}: {name} is shared ({len(holders)} holders: "
                                 f"{', '.join(h['holder'] for h in holders[:6])})")
        check(any(flavour in h["flavours"] for h in holders), f"{label}: {name} is taken with the {flavour} flavour")


def step_main():
    recording = path("main.data")
    check(status_of("main") == "0", "main: lockrec --release --trylock-result exits with the workload's status 0",
          text_of("main.err")[-800:])
    no_probes_left("main")
    if not os.path.exists(recording):
        check(False, "main: the recording exists")
        return
    compare = subprocess.run([sys.executable, os.path.join(top, "tests/reader/compare_with_perf_script.py"),
                              "--lockanalyze", lockanalyze, "--perf-data", recording, "--min-rows", "1000"],
                             capture_output=True, text=True)
    check(compare.returncode == 0, "main: lockanalyze events agrees with perf script row by row",
          (compare.stdout + compare.stderr).strip()[-800:])
    print("     " + compare.stdout.strip().splitlines()[0] if compare.stdout.strip() else "")
    check_named_locks(recording, "main")

    whole = report(recording)
    flavours, kinds = set(), set()
    for lock in whole["locks"]:
        for holder in lock["holders"]:
            flavours.update(holder["flavours"])
            kinds.update(holder["kinds"])
    for flavour in ("plain", "irq", "irqsave", "bh", "trylock", "trylock-taken"):
        check(flavour in flavours, f"main: flavour {flavour} seen", f"flavours: {sorted(flavours)}")
    for kind in ("spinlock", "rwlock-read", "rwlock-write", "mutex", "rwsem-read", "rwsem-write"):
        check(kind in kinds, f"main: lock kind {kind} seen", f"kinds: {sorted(kinds)}")

    # The workload's shells reap their children, and d_walk() over the /proc dentries of reaped
    # tasks meets freed dentries' addresses again: in some recordings, a lock-order cycle whose
    # edges were all made at d_walk's two call sites, one order before the other. It must carry the
    # reused-address caveat (docs/lockdep.md). Other cycles are only counted: whether one occurs
    # depends on the run.
    cycles = [f for f in whole.get("findings", []) if f["kind"] == "lock-order-cycle"]
    for finding in cycles:
        edges = [e for e in finding["evidence"] if e["type"] == "edge"]
        sites = {(e["held_stack"][1]["symbol"], e["first_stack"][1]["symbol"]) for e in edges
                 if len(e["held_stack"]) > 1 and len(e["first_stack"]) > 1}
        one_before_other = bool(edges) and max(e["first_time_ns"] for e in edges) > min(e.get("last_time_ns", e["first_time_ns"]) for e in edges)
        if len(sites) == 1 and all(site.startswith("d_walk+") for site in next(iter(sites))) and one_before_other:
            check(finding.get("caveat") is not None,
                  f"main: the d_walk cycle of {len(finding['locks'])} dentry locks, at {sorted(sites)[0]}, "
                  f"carries the reused-address caveat")
    print(f"     lockdep: {len(cycles)} lock-order cycles in the main recording, "
          f"{sum(1 for f in cycles if f.get('caveat'))} with the caveat")

    events = subprocess.run([lockanalyze, "events", recording, "--format", "csv"], capture_output=True, text=True)
    names = {}
    lines = events.stdout.splitlines()
    header = lines[0].split(",") if lines else []
    column = header.index("event") if "event" in header else None
    for line in lines[1:]:
        if column is not None:
            name = line.split(",")[column]
            names[name] = names.get(name, 0) + 1
    releases = sum(count for name, count in names.items() if "unlock" in name or name.endswith(("up_read", "up_write")))
    returns = sum(count for name, count in names.items() if name.endswith("__return"))
    check(releases > 0, f"main: release probes recorded ({releases} releases)")
    check(returns > 0, f"main: trylock results recorded ({returns} return events)")

    elapsed = float(text_of("main.elapsed", "0") or 0)
    size_mb = os.path.getsize(recording) / 1e6
    rows = len(lines) - 1
    if elapsed > 0:
        print(f"     measured: {rows} lock events in {elapsed:.2f} s of workload: {rows / elapsed:.0f} events/s, "
              f"{size_mb:.1f} MB perf.data, {size_mb / elapsed:.2f} MB/s (emulated guest)")


def step_interrupted(step, expected_status, signal_in_json, say):
    status = status_of(step)
    check(status == expected_status, f"{step}: lockrec exits {expected_status} ({say})",
          f"status {status!r}; " + text_of(f"{step}.err")[-600:])
    no_probes_left(step)
    recording = path(f"{step}.data")
    if signal_in_json is not None:
        readable = subprocess.run(["perf", "script", "-i", recording, "-F", "event"], capture_output=True)
        check(readable.returncode == 0, f"{step}: perf script reads the recording lockrec finished")
        try:
            side = json.load(open(path(f"{step}.data.lockrec.json")))
            got = side.get("command_status", {}).get("signal")
        except (OSError, ValueError) as error:
            got = f"unreadable: {error}"
        check(got == signal_in_json, f"{step}: the side file says COMMAND was stopped by signal {signal_in_json}", f"got {got}")


def step_slowdown():
    times = {}
    for name in ("bare", "lockrec", "release"):
        try:
            times[name] = float(text_of(f"slowdown.{name}").strip())
        except ValueError:
            times[name] = 0.0
    if check(all(t > 0 for t in times.values()), "slowdown: the workload was timed bare, under lockrec and lockrec --release",
             str(times)):
        print(f"     measured: workload {times['bare']:.2f} s bare, {times['lockrec']:.2f} s under lockrec "
              f"({times['lockrec'] / times['bare']:.1f}x), {times['release']:.2f} s under lockrec --release "
              f"({times['release'] / times['bare']:.1f}x), same emulated boot")
    no_probes_left("slowdown")


def step_kaslr():
    recording = path("kaslr.data")
    check(status_of("kaslr") == "0", "kaslr: lockrec exits 0", text_of("kaslr.err")[-600:])
    no_probes_left("kaslr")
    if not os.path.exists(recording):
        return
    # perf's own account of where the kernel was: the [kernel.kallsyms]_text map's start.
    dump = subprocess.run(["perf", "report", "-i", recording, "-D"], capture_output=True, text=True, errors="replace")
    kernel_maps = [line for line in dump.stdout.splitlines()
                   if "PERF_RECORD_MMAP" in line and "[kernel.kallsyms]" in line]
    start = None
    if kernel_maps:
        match = re.search(r"\[(0x[0-9a-f]+)\(", kernel_maps[0])
        start = int(match[1], 16) if match else None
    check(start is not None and start != 0xffffffff81000000,
          f"kaslr: the kernel ran relocated (its map starts at {hex(start) if start else '?'}, "
          f"not 0xffffffff81000000)", kernel_maps[0][:200] if kernel_maps else "no kernel map in the recording")
    check_named_locks(recording, "kaslr")


def step_lockdep():
    """Exactly the findings the test module makes on purpose, named from the recording's kallsyms
    side file, with the module's functions in their stacks; nothing else from the kernel's own
    activity in the same recording."""
    recording = path("lockdep.data")
    check(status_of("lockdep") == "0", "lockdep: lockrec over insmod of the test module exits 0", text_of("lockdep.err")[-600:])
    no_probes_left("lockdep")
    if not os.path.exists(recording):
        return
    result = subprocess.run([lockanalyze, recording, "--vmlinux", vmlinux, "--format", "json", "--fail-on-findings"],
                            capture_output=True, text=True)
    check(result.returncode == 3, "lockdep: --fail-on-findings exits 3", f"status {result.returncode}: {result.stderr[-300:]}")
    findings = json.loads(result.stdout or '{"findings": []}')["findings"]
    found = sorted((f["kind"], tuple(sorted(lock["name"] for lock in f["locks"]))) for f in findings)
    expected = sorted([("irq-inconsistent", ("lockscope_irq_lock",)),
                       ("lock-order-cycle", ("lockscope_spin_a", "lockscope_spin_b")),
                       ("lock-order-cycle", ("lockscope_mutex_a", "lockscope_mutex_b"))])
    check(found == expected, f"lockdep: exactly the module's three findings: {found}",
          "\n     ".join(f"{f['kind']}: {f.get('title', '')} {[lock['name'] for lock in f['locks']]}" for f in findings))

    def stack_functions(finding):
        return {frame["symbol"].split("+")[0] for evidence in finding["evidence"]
                for key in ("first_stack", "held_stack") for frame in evidence.get(key, [])}
    for finding in findings:
        names = tuple(sorted(lock["name"] for lock in finding["locks"]))
        wanted = {("lockscope_irq_lock",): {"lockscope_timer_fn", "lockscope_irq_lock_in_process"},
                  ("lockscope_spin_a", "lockscope_spin_b"): {"lockscope_spin_a_then_b", "lockscope_spin_b_then_a"},
                  ("lockscope_mutex_a", "lockscope_mutex_b"): {"lockscope_mutex_a_then_b", "lockscope_mutex_b_then_a"}}.get(names)
        if wanted:
            seen = stack_functions(finding)
            check(wanted <= seen, f"lockdep: the {finding['kind']} stacks go through {sorted(wanted)}",
                  f"functions in its stacks: {sorted(seen)[:30]}")
        if finding["kind"] == "lock-order-cycle":
            check(finding.get("caveat") is None, f"lockdep: the module's ABBA on {names} (two code paths) has no caveat",
                  finding.get("caveat") or "")
        if finding["kind"] == "irq-inconsistent":
            check(finding.get("title") == "inconsistent {IN-HARDIRQ-W} -> {HARDIRQ-ON-W} usage",
                  "lockdep: worded as lockdep words it", finding.get("title", ""))


STEPS = {
    "main": step_main,
    "lockdep": step_lockdep,
    "sigint": lambda: step_interrupted("sigint", "130", 2, "COMMAND stopped by the SIGINT lockrec passed on"),
    "sigkill_perf": lambda: step_interrupted("sigkill", "125", None, "perf killed with SIGKILL is lockrec's failure"),
    "slowdown": step_slowdown,
    "kaslr": step_kaslr,
}
for step in steps:
    STEPS[step]()
print(f"{len(failures)} failed")
sys.exit(1 if failures else 0)
