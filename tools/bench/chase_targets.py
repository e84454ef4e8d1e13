#!/usr/bin/env python3
"""The pointer chase's two rate targets over several runs, side by side.

usage: chase_targets.py [--markdown] LABEL=CHASE.csv ...

Each CHASE.csv is a `ferry bench chase --json` report turned into CSV by
bench_csv.py (rows "depth D chase, ferry vs am (...)", baseline and ferry in
us per chase). Prints, per depth, ferry's chase rate over the pre-deployed
handler's (`am`, target >= 0.9 at every depth) and over the client's
one-sided gets (`get`, target >= 3 from depth 64), one column per LABEL and
baseline: as CSV (plot_chase_targets.sh plots it) or, with --markdown, as
the tables docs/bench/README.md shows.
"""
import csv
import re
import sys

ROW = re.compile(r"^depth (\d+) chase, ferry vs (am|get) ")
TARGETS = {"am": (0.9, 1), "get": (3.0, 64)}  # baseline -> (rate ratio, from depth)


def read(path):
    """{(baseline, depth): ferry's rate / the baseline's} of one CSV."""
    ratios = {}
    with open(path, newline="") as f:
        rows = csv.reader(line for line in f if not line.startswith("#"))
        header = next(rows, None)
        if header != ["name", "baseline", "ferry", "ratio", "unit"]:
            sys.exit(f"chase_targets.py: {path}: not a bench_csv.py file")
        for name, base, ferry, _, unit in rows:
            m = ROW.match(name)
            if not m or unit != "us":
                continue
            if float(ferry) <= 0:
                sys.exit(f"chase_targets.py: {path}: {name}: no ferry figure")
            ratios[(m.group(2), int(m.group(1)))] = float(base) / float(ferry)
    if not ratios:
        sys.exit(f"chase_targets.py: {path}: no depth rows")
    return ratios


def main(argv):
    markdown = "--markdown" in argv
    runs = [a.split("=", 1) for a in argv if a != "--markdown"]
    if not runs or any(len(r) != 2 for r in runs):
        sys.exit(__doc__.strip().splitlines()[2])
    if any("," in label or '"' in label for label, _ in runs):
        sys.exit("chase_targets.py: a LABEL may not hold a comma or a quote (plot_chase_targets.sh splits on commas)")
    data = [(label, read(path)) for label, path in runs]
    depths = sorted({d for _, r in data for (_, d) in r})
    if markdown:
        for base, (target, from_depth) in TARGETS.items():
            print(f"ferry's chase rate / {base}'s (target >= {target:g} from depth {from_depth}; "
                  "**bold**: missed)\n")
            print("| depth | " + " | ".join(label for label, _ in data) + " |")
            print("|---:|" + "---:|" * len(data))
            for d in depths:
                cells = []
                for _, r in data:
                    v = r.get((base, d))
                    cell = "–" if v is None else f"{v:.2f}"
                    cells.append(f"**{cell}**" if v is not None and d >= from_depth and v < target else cell)
                print(f"| {d} | " + " | ".join(cells) + " |")
            print()
        return
    w = csv.writer(sys.stdout, lineterminator="\n")
    w.writerow(["depth"] + [f"{base} {label}" for base in TARGETS for label, _ in data])
    for d in depths:
        row = [d]
        for base in TARGETS:
            row += ["" if r.get((base, d)) is None else f"{r[(base, d)]:.4g}" for _, r in data]
        w.writerow(row)


if __name__ == "__main__":
    main(sys.argv[1:])
