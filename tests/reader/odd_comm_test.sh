#!/usr/bin/env bash
# `lockanalyze events` quotes and escapes comms that need it, in CSV and JSON lines, on a synthetic
# recording (make_odd_comm_recording): the CSV rows agree with perf script (the oracle), and the
# JSON lines, read by Python's json module, carry the same comm and event on every row as the
# CSV read by Python's csv module. Exits 77 (skipped) saying why when perf is not there.
set -euo pipefail
make_recording=$1
lockanalyze=$2
top=$(cd "$(dirname "$0")/../.." && pwd)
command -v perf >/dev/null || { echo "SKIPPED: perf is not installed (Debian: linux-perf)"; exit 77; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$make_recording" "$work/odd.perf.data"
python3 "$top/tests/reader/compare_with_perf_script.py" --lockanalyze "$lockanalyze" \
  --perf-data "$work/odd.perf.data" --min-rows 30
"$lockanalyze" events --format csv -o "$work/rows.csv" "$work/odd.perf.data" 2>/dev/null
"$lockanalyze" events --format jsonl -o "$work/rows.jsonl" "$work/odd.perf.data" 2>/dev/null
python3 - "$work/rows.csv" "$work/rows.jsonl" <<'PY'
import csv, json, sys
csv_rows = [(r["comm"], r["event"]) for r in csv.DictReader(open(sys.argv[1]))]
json_rows = [(j["comm"], j["event"]) for j in map(json.loads, open(sys.argv[2]))]
if csv_rows != json_rows:
    sys.exit(f"FAIL: CSV and JSON lines differ: {csv_rows[:5]} vs {json_rows[:5]}")
odd = sorted({comm for comm, _ in csv_rows if any(c in comm for c in ',"\\ ')})
if len(odd) < 5:
    sys.exit(f"FAIL: expected rows of at least 5 comms that need quoting or escaping, got {odd}")
print(f"{len(csv_rows)} rows: CSV and JSON lines agree on every comm, including {odd}")
PY
