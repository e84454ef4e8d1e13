#!/usr/bin/env bash
# plot_chase_targets.sh IN.csv OUT.png — chase_targets.py's CSV as two
# panels: ferry's chase rate over the pre-deployed handler's (target line at
# 0.9) and over the client's gets (target line at 3, from depth 64), against
# depth, one line per run (servers x transport). Needs gnuplot (Debian:
# gnuplot-nox).
set -euo pipefail
[[ $# -eq 2 ]] || { echo "usage: plot_chase_targets.sh IN.csv OUT.png" >&2; exit 2; }
in=$1 out=$2
cols=$(head -1 "$in" | awk -F, '{ print NF }')
runs=$(((cols - 1) / 2))
[[ $runs -ge 1 && $((runs * 2 + 1)) -eq $cols ]] || { echo "plot_chase_targets.sh: $in is not chase_targets.py's CSV" >&2; exit 1; }
gnuplot <<GP
set terminal pngcairo size 1400,600 font ",11"
set output "${out}"
set datafile separator ","
set key autotitle columnhead
set multiplot layout 1,2 title "Pointer chase: ferry's rate over each baseline's, by depth (higher is better)"
set logscale x 2
set xlabel "chase depth (hops)"
set grid
set key top left font ",9"
set title "vs a pre-deployed AM handler (target >= 0.9)"
set ylabel "ferry chases/s / am chases/s"
set yrange [0:*]
set offsets 0, 0, graph 0.1, 0
plot for [i=2:${runs}+1] "${in}" using 1:i with linespoints lw 2 pt (i % 7 + 1), \
     0.9 with lines dt 2 lc rgb "black" title "target 0.9"
set title "vs the client's one-sided gets (target >= 3 from depth 64)"
set ylabel "ferry chases/s / get chases/s"
set logscale y
set yrange [*:*]
set offsets 0, 0, 0, 0
plot for [i=${runs}+2:2*${runs}+1] "${in}" using 1:i with linespoints lw 2 pt (i % 7 + 1), \
     3 with lines dt 2 lc rgb "black" title "target 3"
unset multiplot
GP
