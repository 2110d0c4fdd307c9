#!/usr/bin/env python3
"""Checks `lockanalyze events` against `perf script` on one recording, row by row.

Both outputs are reduced to (time in µs, cpu, pid, tid, comm, event, lock, ret) and compared as
sorted lists: same row count, same rows. perf script prints time truncated to the microsecond.
Exit 0 when they agree, 1 with the first differences when they do not.
"""
import argparse
import re
import subprocess
import sys

PERF_LINE = re.compile(
    r"^\s*(?P<comm>.*?)\s+(?P<pid>-?\d+)/(?P<tid>-?\d+)\s+\[(?P<cpu>\d+)\]\s+"
    r"(?P<sec>\d+)\.(?P<usec>\d{6}):\s+(?P<event>\S+):\s?(?P<trace>.*)$")
KPROBE_LOCK = re.compile(r"\block=0x([0-9a-f]+)")
KPROBE_RET = re.compile(r"\bret=0x([0-9a-f]+)")
CONTENTION_LOCK = re.compile(r"^0x([0-9a-f]+)")
CONTENTION_RET = re.compile(r"\(ret=(-?\d+)\)")


def perf_rows(perf_data):
    out = subprocess.run(
        ["perf", "script", "--hide-call-graph", "-i", perf_data, "-F",
         "comm,pid,tid,cpu,time,event,trace"],
        check=True, capture_output=True, text=True, errors="replace").stdout
    rows = []
    for line in out.splitlines():
        m = PERF_LINE.match(line)
        if not m:
            raise SystemExit(f"cannot parse perf script line: {line!r}")
        trace = m["trace"]
        lock = KPROBE_LOCK.search(trace) or CONTENTION_LOCK.search(trace)
        ret = None
        if (r := KPROBE_RET.search(trace)):
            ret = int(r[1], 16)
        elif (r := CONTENTION_RET.search(trace)):
            ret = int(r[1])
        rows.append((int(m["sec"]) * 1000000 + int(m["usec"]), int(m["cpu"]), int(m["pid"]),
                     int(m["tid"]), m["comm"], m["event"],
                     int(lock[1], 16) if lock else None, ret))
    return rows


def perf_frame_counts(perf_data):
    """(time µs, tid, event, kernel frames, user frames) per sample, from perf script's callchain
    lines. Kernel frames come first and have the top bits set (x86_64 and arm64 alike); from the
    first user address on, every frame is a user frame: a user stack unwound by frame pointers
    through garbage can yield a kernel-looking address, which perf too keeps in user context."""
    out = subprocess.run(["perf", "script", "-i", perf_data, "-F", "tid,time,event,ip"],
                         check=True, capture_output=True, text=True, errors="replace").stdout
    rows, current = [], None
    for line in out.splitlines():
        if line.startswith("\t"):
            address = int(line.split()[0], 16)
            in_kernel_part = current[4] == 0 and address >= 0xffff000000000000
            current[3 if in_kernel_part else 4] += 1
        elif line.strip():
            if current:
                rows.append(tuple(current))
            tid, time, event = line.split()[:3]
            sec, usec = time.rstrip(":").split(".")
            current = [int(sec) * 1000000 + int(usec), int(tid), event.rstrip(":"), 0, 0]
    if current:
        rows.append(tuple(current))
    return rows


def compare(name, ours, theirs):
    if sorted(ours, key=repr) == sorted(theirs, key=repr):
        return True
    from collections import Counter
    only_ours = Counter(ours) - Counter(theirs)
    only_theirs = Counter(theirs) - Counter(ours)
    print(f"FAIL ({name}): {sum(only_ours.values())} rows only in lockanalyze, "
          f"{sum(only_theirs.values())} only in perf script")
    for row in list(only_ours)[:10]:
        print("  lockanalyze only:", row)
    for row in list(only_theirs)[:10]:
        print("  perf script only:", row)
    return False


def lockanalyze_rows(csv_text):
    import csv
    import io
    reader = csv.DictReader(io.StringIO(csv_text))
    expected = "time_ns,cpu,pid,tid,comm,event,lock,ret,context,irqs_off,stack_depth".split(",")
    if reader.fieldnames[:len(expected)] != expected:
        raise SystemExit(f"unexpected CSV header: {reader.fieldnames}")
    rows = []
    for r in reader:
        ret = int(r["ret"]) if r["ret"] else None
        if ret is not None and ret < 0 and r["event"].startswith("probe"):
            ret &= (1 << 64) - 1  # perf prints a kprobe's u64 ret in hex
        rows.append(((int(r["time_ns"]) // 1000, int(r["cpu"]), int(r["pid"]), int(r["tid"]),
                      r["comm"], r["event"], int(r["lock"], 16) if r["lock"] else None, ret),
                     (int(r["time_ns"]) // 1000, int(r["tid"]), r["event"],
                      int(r["kernel_frames"]), int(r["user_frames"]))))
    return [row for row, _ in rows], [frames for _, frames in rows]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--lockanalyze", required=True)
    parser.add_argument("--perf-data", required=True)
    parser.add_argument("--events-csv", help="use this lockanalyze output instead of running it")
    parser.add_argument("--min-rows", type=int, default=1)
    args = parser.parse_args()

    if args.events_csv:
        csv_text = open(args.events_csv).read()
    else:
        csv_text = subprocess.run([args.lockanalyze, "events", args.perf_data], check=True,
                                  capture_output=True, text=True, errors="replace").stdout
    ours, our_frames = lockanalyze_rows(csv_text)
    theirs = perf_rows(args.perf_data)
    print(f"lockanalyze: {len(ours)} rows; perf script: {len(theirs)} rows")
    if len(theirs) < args.min_rows:
        print(f"FAIL: expected at least {args.min_rows} rows from perf script")
        return 1
    ok = compare("rows", ours, theirs)
    if ok:
        print("every row agrees (time to the µs, cpu, pid, tid, comm, event, lock, ret)")
    frames_ok = compare("callchain frames", our_frames, perf_frame_counts(args.perf_data))
    if frames_ok:
        print("every sample's kernel and user frame counts agree with perf script's callchain")
    return 0 if ok and frames_ok else 1


if __name__ == "__main__":
    sys.exit(main())
