#!/usr/bin/env bash
# `ferry bench invoke` runs end to end (a short run: this checks that every
# case is measured and reported, not how fast; figures are in the README).
set -euo pipefail
FERRY=$1
fail() { echo "FAIL: $*" >&2; exit 1; }
export UCX_NET_DEVICES=lo FI_TCP_IFACE=lo

"$FERRY" bench invoke --help | grep -q -- "--tls" || fail "bench invoke --help"
# UCX over shm and tcp, and libfabric over shm (its raw bulk baseline is
# its own: the server fi_reads each slice; raw_ofi.cpp).
for over in "--tls shm" "--tls tcp" "--transport ofi --provider shm"; do
  tls=$over  # for the messages below
  # shellcheck disable=SC2086
  out=$("$FERRY" bench invoke $over --iterations 50 --batches 2 --window 8 --total 500 --json)
  echo "$out"
  [[ $(grep -c '"name"' <<<"$out") -eq 7 ]] || fail "$tls: expected 7 cases"
  for c in "warm invoke round trip" "cold first call" "pipelined rate" "preload, nothing run" "first call after preload" \
           "object put, 64 MiB" "object get, 64 MiB"; do
    line=$(grep "\"name\": \"$c" <<<"$out") || fail "$tls: no '$c' case"
    # baseline, ferry and ratio are positive numbers
    grep -Eq '"baseline": [0-9.]+(e[-+][0-9]+)?, "ferry": [0-9.]+(e[-+][0-9]+)?, "ratio": [0-9.]+(e[-+][0-9]+)?, "unit": "(us|ms|M/s|GB/s)"' <<<"$line" \
      || fail "$tls: malformed row: $line"
    grep -Eq '"(baseline|ferry)": 0(\.0+)?,' <<<"$line" && fail "$tls: zero figure: $line"
  done
  # The warm round trip, the rate and the bulk cases are measured in paired
  # rounds: each row carries the lowest and highest of its rounds' ratios,
  # low <= high.
  for c in "warm invoke round trip" "pipelined rate" "object put, 64 MiB" "object get, 64 MiB"; do
    range=$(grep "\"name\": \"$c" <<<"$out" | grep -Eo '"ratio_range": \[[0-9.e+-]+, [0-9.e+-]+\]') \
      || fail "$tls: '$c' has no ratio_range"
    awk -F'[][, ]+' '{ exit !($2 > 0 && $2 <= $3) }' <<<"$range" || fail "$tls: '$c' range out of order: $range"
  done
done
# The table names what the bulk baseline is, and UCX's peak beside it.
text=$("$FERRY" bench invoke --tls shm --iterations 50 --batches 1 --window 8 --total 500)
echo "$text"
grep -Eq '^bulk baseline: .* [0-9.]+ GB/s$' <<<"$text" || fail "no bulk baseline line in the table's output"
# Bad options are refused with a message, not a crash.
set +e
"$FERRY" bench invoke --tls bogus >/dev/null 2>&1; rc=$?
set -e
[[ $rc -ne 0 ]] || fail "--tls bogus must fail"
echo "cli.bench_invoke: ok"
