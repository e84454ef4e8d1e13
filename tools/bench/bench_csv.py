#!/usr/bin/env python3
"""A `ferry bench ... --json` report (stdin) as CSV (stdout).

Every ferry benchmark prints {"parameters": {...}, "results": [{name,
baseline, ferry, ratio, unit}, ...]}; the CSV has one line per result with
those five columns, after a comment line holding the parameters, so
plot.sh and spreadsheets read every benchmark the same way. Two more
columns, ratio_low and ratio_high, hold a result's "ratio_range" (the
lowest and highest of its rounds' ratios, where the benchmark runs rounds)
and are empty where it has none.
"""
import csv
import json
import sys

report = json.load(sys.stdin)
params = report.get("parameters", {})
out = sys.stdout
out.write("# " + ", ".join(f"{k}={v}" for k, v in params.items()) + "\n")
w = csv.writer(out, lineterminator="\n")
w.writerow(["name", "baseline", "ferry", "ratio", "unit", "ratio_low", "ratio_high"])
for r in report["results"]:
    low, high = r.get("ratio_range", ["", ""])
    w.writerow([r["name"], r["baseline"], r["ferry"], r["ratio"], r["unit"], low, high])
