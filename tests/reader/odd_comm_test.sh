#!/usr/bin/env bash
# `lockanalyze events` quotes and escapes comms that need it, in CSV and JSON lines, on a synthetic
# recording (make_odd_comm_recording): the CSV rows agree with perf script (the oracle), and the
# JSON lines, read by Python's json module, carry the same columns in the same order and the same
# value in every column of every row as the CSV read by Python's csv module. Exits 77 (skipped)
# saying why when perf is not there.
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
csv_reader = csv.DictReader(open(sys.argv[1]))
csv_rows = list(csv_reader)
json_rows = [json.loads(line, object_pairs_hook=list) for line in open(sys.argv[2])]
if len(csv_rows) != len(json_rows):
    sys.exit(f"FAIL: {len(csv_rows)} CSV rows but {len(json_rows)} JSON lines")
# The same columns in the same order: the CSV header is the JSON keys of every line.
for number, pairs in enumerate(json_rows, 1):
    if [key for key, _ in pairs] != csv_reader.fieldnames:
        sys.exit(f"FAIL: JSON line {number} has keys {[k for k, _ in pairs]}, the CSV header is {csv_reader.fieldnames}")

# The same value in both, as each format spells it: JSON null is an empty CSV field, JSON
# true/false is 1/0, JSON numbers are CSV numbers except common_flags, which CSV writes in hex.
def as_csv(key, value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if key == "common_flags":
        return hex(value)
    return str(value)

for number, (row, pairs) in enumerate(zip(csv_rows, json_rows), 1):
    for key, value in pairs:
        if as_csv(key, value) != row[key]:
            sys.exit(f"FAIL: row {number}, {key}: CSV {row[key]!r}, JSON {value!r}")
odd = sorted({row["comm"] for row in csv_rows if any(c in row["comm"] for c in ',"\\ ')})
if len(odd) < 5:
    sys.exit(f"FAIL: expected rows of at least 5 comms that need quoting or escaping, got {odd}")
print(f"{len(csv_rows)} rows: CSV and JSON lines agree on all {len(csv_reader.fieldnames)} columns "
      f"of every row, including the comms {odd}")
PY
