#!/usr/bin/env bash
# `ferry bench placement` runs end to end (a short run: this checks that every
# case is measured and reported and the CSV is written, not how fast; figures
# are in docs/mobility.md).
set -euo pipefail
FERRY=$1
fail() { echo "FAIL: $*" >&2; exit 1; }
export UCX_NET_DEVICES=lo
csv=$(mktemp --suffix=.csv)
trap 'rm -f "$csv"' EXIT

"$FERRY" bench placement --help | grep -q -- "--csv" || fail "bench placement --help"
out=$("$FERRY" bench placement --calls 4 --window 2 --model-bytes 262144 --busy-rounds 20000000 --objects 5 \
        --rounds 1 --csv "$csv")
echo "$out"
for bob in "in place" queued; do
  grep -Eq "^inference latency, Bob saturated, $bob: fixed vs automatic \(shm\) +[0-9.e+]+ us +[0-9.e+]+ us +[0-9.]+$" \
    <<<"$out" || fail "no latency row ($bob)"
  grep -Eq "^inference throughput, 2 in flight, $bob: fixed vs automatic +[0-9.e+]+ 1/s +[0-9.e+]+ 1/s +[0-9.]+$" \
    <<<"$out" || fail "no throughput row ($bob)"
done
grep -q "^inference in place on Bob: automatic placement ran the calls: " <<<"$out" || fail "no placement summary (in place)"
# Queued behind Bob's executors, Alice's calls leave him: a node reports pulled calls.
queued=$(sed -n '/^inference queued on Bob: automatic placement ran the calls: /,$p' <<<"$out")
grep -q "pulled 1 x" <<<"$queued" || fail "queued on Bob: no call was pulled"
grep -Eq "^  node [12] reported: [0-9]+ calls run, [1-9][0-9]* on pulled data" <<<"$queued" \
  || fail "queued on Bob: no node reported pulled calls"
# The CSV: a header, 6 staleness points per scheme; no staleness costs 1 round
# trip per call, full staleness 2, under both schemes.
[[ $(head -1 "$csv") == "scheme,staleness,round_trips_mean,round_trips_stddev,latency_us_median" ]] || fail "CSV header"
[[ $(grep -c '^home,' "$csv") -eq 6 && $(grep -c '^e2e,' "$csv") -eq 6 ]] || fail "CSV rows"
for s in home e2e; do
  grep -q "^$s,0.000,1.0000," "$csv" || fail "$s: fresh caches must cost 1 round trip"
  grep -q "^$s,1.000,2.0000," "$csv" || fail "$s: stale caches must cost 2 round trips"
done
set +e
"$FERRY" bench placement --csv /nonexistent-dir/x.csv --calls 1 --objects 1 --rounds 1 >/dev/null 2>&1; rc=$?
set -e
[[ $rc -ne 0 ]] || fail "an unwritable --csv must fail"
# `ferry stats` on a running cluster: one line per node, from its heartbeats.
stats=$("$FERRY" launch -n 2 -- "$FERRY" stats --json)
echo "$stats"
[[ $(grep -c '"executors": 2' <<<"$stats") -eq 2 ]] || fail "ferry stats: expected 2 nodes with 2 executors"
[[ $(grep -c '"recompiling": 0}' <<<"$stats") -eq 2 ]] || fail "ferry stats: expected 2 nodes recompiling nothing"
set +e
env -u FERRY_RENDEZVOUS -u FERRY_HOSTS "$FERRY" stats >/dev/null 2>&1; rc=$?
set -e
[[ $rc -eq 1 ]] || fail "ferry stats outside a cluster must fail"
echo "cli.bench_placement: ok"
