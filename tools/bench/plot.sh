#!/usr/bin/env bash
# plot.sh IN.csv OUT.png TITLE [BASELINE-LABEL [MEASURED-LABEL]]
# Any ferry benchmark's CSV (bench_csv.py: name,baseline,ferry,ratio,unit,...)
# as a PNG: per case, the baseline's and ferry's figure side by side (log
# scale; each case keeps its own unit, shown in its label), and ferry /
# baseline above each pair. MEASURED-LABEL names the "ferry" column (default
# ferry; `ferry bench ifunc` puts the ifunc figures there). Needs gnuplot
# (Debian: gnuplot-nox).
set -euo pipefail
[[ $# -ge 3 ]] || { echo "usage: plot.sh IN.csv OUT.png TITLE [BASELINE-LABEL [MEASURED-LABEL]]" >&2; exit 2; }
in=$1 out=$2 title=$3 base=${4:-baseline} measured=${5:-ferry}
data=$(mktemp)
trap 'rm -f "$data"' EXIT
# The rows alone; commas inside a quoted name become semicolons (gnuplot
# cuts a label at the separator).
grep -v -e '^#' -e '^name,' "$in" | sed -E ':a; s/^("[^",]*), /\1; /; ta' >"$data" || true
rows=$(wc -l <"$data")
[[ $rows -gt 0 ]] || { echo "plot.sh: $in has no rows" >&2; exit 1; }
longest=$(cut -d, -f1 "$data" | awk '{ if (length($0) > m) m = length($0) } END { print m + 8 }')
lmargin=$((longest * 45 / 100 + 4))  # the first label, slanted, reaches this far left
width=$((300 + rows * 110 + lmargin * 8))
gnuplot <<GP
set terminal pngcairo size ${width},760 font ",10"
set output "${out}"
set datafile separator ","
set title "${title//\"/\\\"}"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set logscale y
set format y "%g"
set grid ytics
set xtics rotate by 30 right font ",8"
set bmargin 18
set lmargin ${lmargin}
set offsets 0, 0, graph 0.12, 0
set key top left
set yrange [*:*]
plot "${data}" using 2:xtic(stringcolumn(1)." [".stringcolumn(5)."]") title "${base}" lc rgb "#999999", \
     "" using 3 title "${measured}" lc rgb "#1f77b4", \
     "" using (\$0):(\$2 > \$3 ? \$2 : \$3):(sprintf("%.2fx", \$4)) with labels offset 0,1 font ",8" notitle
GP
