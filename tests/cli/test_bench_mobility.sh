#!/usr/bin/env bash
# `ferry bench mobility` runs end to end (a short run: this checks that every
# case is measured and reported, not how fast; figures are in docs/mobility.md).
set -euo pipefail
FERRY=$1
fail() { echo "FAIL: $*" >&2; exit 1; }
export UCX_NET_DEVICES=lo

"$FERRY" bench mobility --help | grep -q -- "--move-bytes" || fail "bench mobility --help"
out=$("$FERRY" bench mobility --repeat 5 --elements 16 --move-bytes 65536 --json)
echo "$out"
[[ $(grep -c '"name"' <<<"$out") -eq 5 ]] || fail "expected 5 cases"
for c in "list walk" "move a 64 KiB object" "first call there: on a copy vs after a move (64 KiB" \
         "call after a move: fresh vs stale cache (home" \
         "call after a move: fresh vs stale cache (e2e"; do
  line=$(grep -F "\"name\": \"$c" <<<"$out") || fail "no '$c' case"
  grep -Eq '"baseline": [0-9.]+(e[-+][0-9]+)?, "ferry": [0-9.]+(e[-+][0-9]+)?, "ratio": [0-9.]+(e[-+][0-9]+)?, "unit": "(us|ms)"' <<<"$line" \
    || fail "malformed row: $line"
  grep -Eq '"(baseline|ferry)": 0(\.0+)?,' <<<"$line" && fail "zero figure: $line"
  # Each repetition measures both back to back: the row carries their ratios' range.
  grep -Eq '"ratio_range": \[[0-9.e+-]+, [0-9.e+-]+\]' <<<"$line" || fail "no ratio_range: $line"
done
# The table form reports the round trips per call: 1 with a fresh cache, 2
# stale; here on nodes with directory stores, the moved object's image in
# several parts (written to the destination's disk, committed by a rename).
table=$("$FERRY" bench mobility --repeat 3 --elements 8 --move-bytes 300000 --persistent)
echo "$table"
grep -q "persistent=true" <<<"$table" || fail "--persistent not in the parameters"
grep -q "move a 292 KiB object" <<<"$table" || fail "no move on persistent nodes"
grep -q "round trips per call (home): fresh cache 1.00, stale cache 2.00" <<<"$table" || fail "home round trips"
grep -q "round trips per call (e2e): fresh cache 1.00, stale cache 2.00" <<<"$table" || fail "e2e round trips"
set +e
"$FERRY" bench mobility --tls bogus >/dev/null 2>&1; rc=$?
set -e
[[ $rc -ne 0 ]] || fail "--tls bogus must fail"
set +e
"$FERRY" bench mobility --move-bytes 2147483648 >/dev/null 2>&1; rc=$?
set -e
[[ $rc -ne 0 ]] || fail "--move-bytes over 1 GiB must fail"
echo "cli.bench_mobility: ok"
