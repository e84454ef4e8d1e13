#!/usr/bin/env bash
# plot_staleness.sh IN.csv OUT.png — the seed's Figure 3 from
# `ferry bench placement --csv IN.csv`: round trips per call (mean, with the
# standard deviation over rounds as error bars) against the fraction of calls
# whose owner cache was stale, one line per directory scheme (home, e2e).
# Needs gnuplot (Debian: gnuplot-nox).
set -euo pipefail
[[ $# -eq 2 ]] || { echo "usage: plot_staleness.sh IN.csv OUT.png" >&2; exit 2; }
in=$1 out=$2
for scheme in home e2e; do
  grep -q "^$scheme," "$in" || { echo "plot_staleness.sh: $in has no $scheme rows" >&2; exit 1; }
done
gnuplot <<GP
set terminal pngcairo size 900,560 font ",11"
set output "${out}"
set datafile separator ","
set title "Round trips per call vs owner-cache staleness (ferry bench placement, 3 nodes)"
set xlabel "fraction of calls whose cached owner is stale"
set ylabel "round trips per call"
set grid
set key top left
set xrange [-0.05:1.05]
set yrange [0:*]
plot "< grep '^home,' ${in}" using 2:3:4 with yerrorlines lw 2 pt 7 lc rgb "#1f77b4" title "home directory", \
     "< grep '^e2e,' ${in}" using 2:3:4 with yerrorlines lw 2 pt 5 lc rgb "#d62728" title "end-to-end caches (discovery on a miss)"
GP
