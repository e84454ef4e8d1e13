#!/usr/bin/env python3
"""The pointer chase's two rate targets over several runs, side by side.

usage: chase_targets.py [--markdown] LABEL=CHASE.csv ...

Each CHASE.csv is a `ferry bench chase --json` report turned into CSV by
bench_csv.py (rows "depth D chase, ferry vs am (...)", baseline and ferry in
us per chase, and the lowest and highest of the rounds' time ratios). Prints,
per depth, ferry's chase rate over the pre-deployed handler's (`am`, target
>= 0.9 at every depth) and over the client's one-sided gets (`get`, target
>= 3 from depth 64), and the range of the rounds' own rate ratios (each
round ran ferry and the baseline back to back), one column group per
baseline and LABEL: as CSV (plot_chase_targets.sh plots it) or, with
--markdown, as the tables docs/bench/README.md shows.
"""
import csv
import re
import sys

ROW = re.compile(r"^depth (\d+) chase, ferry vs (am|get) ")
TARGETS = {"am": (0.9, 1), "get": (3.0, 64)}  # baseline -> (rate ratio, from depth)
HEADER = ["name", "baseline", "ferry", "ratio", "unit", "ratio_low", "ratio_high"]


def read(path):
    """{(baseline, depth): (ferry's rate / the baseline's, lowest, highest of the rounds')} of one CSV."""
    ratios = {}
    with open(path, newline="") as f:
        rows = csv.reader(line for line in f if not line.startswith("#"))
        if next(rows, None) != HEADER:
            sys.exit(f"chase_targets.py: {path}: not a bench_csv.py file")
        for name, base, ferry, _, unit, low, high in rows:
            m = ROW.match(name)
            if not m or unit != "us":
                continue
            if float(ferry) <= 0:
                sys.exit(f"chase_targets.py: {path}: {name}: no ferry figure")
            rate = float(base) / float(ferry)
            # Time ratios ferry / baseline: the highest is the slowest round.
            rounds = (1 / float(high), 1 / float(low)) if low and high else (rate, rate)
            ratios[(m.group(2), int(m.group(1)))] = (rate, *rounds)
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
            print(f"ferry's chase rate / {base}'s, and below it the lowest and highest of the rounds' "
                  f"(target >= {target:g} from depth {from_depth}; **bold**: missed)\n")
            print("| depth | " + " | ".join(label for label, _ in data) + " |")
            print("|---:|" + "---:|" * len(data))
            for d in depths:
                cells = []
                for _, r in data:
                    v = r.get((base, d))
                    if v is None:
                        cells.append("–")
                        continue
                    rate, low, high = v
                    cell = f"**{rate:.2f}**" if d >= from_depth and rate < target else f"{rate:.2f}"
                    cells.append(f"{cell}<br><sub>{low:.2f}–{high:.2f}</sub>")
                print(f"| {d} | " + " | ".join(cells) + " |")
            print()
        return
    w = csv.writer(sys.stdout, lineterminator="\n")
    w.writerow(["depth"] + [f"{base} {label}{part}" for base in TARGETS for label, _ in data
                            for part in ("", " low", " high")])
    for d in depths:
        row = [d]
        for base in TARGETS:
            for _, r in data:
                v = r.get((base, d))
                row += ["", "", ""] if v is None else [f"{x:.4g}" for x in v]
        w.writerow(row)


if __name__ == "__main__":
    main(sys.argv[1:])
