#!/bin/sh
# run_fuzz.sh FUZZER SEEDS SECONDS [CORPUS]: run a libFuzzer target for
# SECONDS from the seed corpus SEEDS (never written to). New inputs go to
# CORPUS (kept: `make fuzz` grows it run after run), else to a temporary
# directory. A crash, leak, sanitizer report or timeout fails the run and
# leaves the input as ./crash-*, ./leak-* or ./timeout-* here.
set -eu
fuzzer=$1 seeds=$2 seconds=$3
if [ $# -ge 4 ]; then
  corpus=$4
  mkdir -p "$corpus"
else
  corpus=$(mktemp -d)
  trap 'rm -rf "$corpus"' EXIT
fi
"$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
  "$corpus" "$seeds"
