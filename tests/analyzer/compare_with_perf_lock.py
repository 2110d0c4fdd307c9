#!/usr/bin/env python3
"""Compares `perf lock contention` output with `lockanalyze contention --format json` row by row.

Caller, type and contended count must be equal; wait times must agree within what perf prints
(two decimals of the unit it chose, or integer nanoseconds). Rows are compared in order, since
the order (sort key, then perf's hash-table order for ties) is part of the output."""
import argparse
import json
import re
import sys

ROW = re.compile(r"^\s*(\d+)((?:\s+[\d.]+ (?:ns|us|ms|s|m|h))+)\s+(\S+)\s+(.*?)\s*$")
TIME = re.compile(r"([\d.]+) (ns|us|ms|s|m|h)")
SCALE = {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9, "m": 60e9, "h": 3600e9}


def perf_rows(path):
    rows = []
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("\t"):
                continue  # -v call stacks
            m = ROW.match(line)
            if not m:
                continue
            times = TIME.findall(m.group(2))
            if len(times) != 3:
                continue
            rows.append({"contended": int(m.group(1)), "times": times,
                         "type": m.group(3), "caller": m.group(4)})
    return rows


def row_lines(path):
    with open(path, errors="replace") as f:
        return [line.rstrip("\n") for line in f if not line.startswith("\t") and ROW.match(line)]


def time_agrees(printed, ns):
    value, unit = printed
    if unit == "ns":
        return int(value) == ns
    # perf divides in float and prints %.2f: allow half a unit in the last digit plus float error.
    return abs(ns / SCALE[unit] - float(value)) <= 0.005 + 1e-6 * max(1.0, float(value))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("perf_output")
    parser.add_argument("ours_json")
    parser.add_argument("--min-rows", type=int, default=1)
    parser.add_argument("--ours-text", help="lockanalyze's text table: its rows must equal perf's "
                        "row lines character for character")
    args = parser.parse_args()
    theirs = perf_rows(args.perf_output)
    with open(args.ours_json) as f:
        ours = json.load(f)
    if len(theirs) < args.min_rows:
        print(f"FAIL: perf printed {len(theirs)} rows, fewer than {args.min_rows}")
        print(open(args.perf_output).read())
        return 1
    ours = ours[:len(theirs)]  # perf -E shows the top rows only
    equal = 0
    problems = []
    for i, (p, o) in enumerate(zip(theirs, ours)):
        diffs = []
        if p["caller"] != o["caller"]:
            diffs.append(f"caller {p['caller']!r} vs {o['caller']!r}")
        if p["type"] != o["type"]:
            diffs.append(f"type {p['type']} vs {o['type']}")
        if p["contended"] != o["contended"]:
            diffs.append(f"contended {p['contended']} vs {o['contended']}")
        for name, printed, key in zip(("total", "max", "avg"), p["times"],
                                      ("total_wait_ns", "max_wait_ns", "avg_wait_ns")):
            if not time_agrees(printed, o[key]):
                diffs.append(f"{name} {printed[0]} {printed[1]} vs {o[key]} ns")
        if diffs:
            problems.append(f"row {i + 1}: " + "; ".join(diffs))
        else:
            equal += 1
    if len(ours) != len(theirs):
        problems.append(f"perf printed {len(theirs)} rows, lockanalyze {len(ours)}")
    if args.ours_text:
        perf_lines = row_lines(args.perf_output)
        our_lines = row_lines(args.ours_text)[:len(perf_lines)]
        for i, (p, o) in enumerate(zip(perf_lines, our_lines)):
            if p != o:
                problems.append(f"text row {i + 1}: {p!r} vs {o!r}")
        if len(our_lines) != len(perf_lines):
            problems.append(f"text: perf {len(perf_lines)} row lines, lockanalyze {len(our_lines)}")
    print(f"{equal} of {len(theirs)} rows equal")
    for problem in problems:
        print("FAIL:", problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
