#!/usr/bin/env bash
# plot_chase_targets.sh IN.csv OUT.png — chase_targets.py's CSV as two
# panels: ferry's chase rate over the pre-deployed handler's (target line at
# 0.9) and over the client's gets (target line at 3, from depth 64), against
# depth, one line per run (servers x transport), with bars from the lowest
# to the highest of the run's rounds. Needs gnuplot (Debian: gnuplot-nox).
set -euo pipefail
[[ $# -eq 2 ]] || { echo "usage: plot_chase_targets.sh IN.csv OUT.png" >&2; exit 2; }
in=$1 out=$2
cols=$(head -1 "$in" | awk -F, '{ print NF }')
runs=$(((cols - 1) / 6))  # per run and baseline: the ratio, the rounds' lowest, their highest
[[ $runs -ge 1 && $((runs * 6 + 1)) -eq $cols ]] || { echo "plot_chase_targets.sh: $in is not chase_targets.py's CSV" >&2; exit 1; }
gnuplot <<GP
set terminal pngcairo size 1400,600 font ",11"
set output "${out}"
set datafile separator ","
set multiplot layout 1,2 title "Pointer chase: ferry's rate over each baseline's, by depth (higher is better)"
set logscale x 2
set xlabel "chase depth (hops)"
set grid
set key top left font ",9"
set title "vs a pre-deployed AM handler (target >= 0.9; bars: the rounds)"
set ylabel "ferry chases/s / am chases/s"
set yrange [0:2.5]  # a round far off stretches the panel: its bar is cut at the top
set offsets graph 0.03, graph 0.03, graph 0.1, 0
plot for [k=0:${runs}-1] "${in}" using 1:(column(2+3*k)):(column(3+3*k)):(column(4+3*k)) \
       with yerrorlines lw 2 pt (k % 7 + 1) title columnhead(2+3*k), \
     0.9 with lines dt 2 lc rgb "black" title "target 0.9"
set title "vs the client's one-sided gets (target >= 3 from depth 64)"
set ylabel "ferry chases/s / get chases/s"
set logscale y
set yrange [*:*]
set offsets graph 0.03, graph 0.03, 0, 0
plot for [k=${runs}:2*${runs}-1] "${in}" using 1:(column(2+3*k)):(column(3+3*k)):(column(4+3*k)) \
       with yerrorlines lw 2 pt (k % 7 + 1) title columnhead(2+3*k), \
     3 with lines dt 2 lc rgb "black" title "target 3"
unset multiplot
GP
