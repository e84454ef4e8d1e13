#!/usr/bin/env bash
# `ferry bench ifunc` at a tiny size: the pointer chase as a UCX ifunc
# (ferry's compat library) and its baselines, and through <ferry/ifunc.h> on
# the ferry nodes against ferry's forwarded call, in one run. Every endpoint must
# match the local chase (the program exits 1 otherwise), and the JSON report
# must hold every row with positive, finite figures (no timing assertions).
set -euo pipefail
FERRY=$1
fail() { echo "FAIL: $*" >&2; exit 1; }
export UCX_NET_DEVICES=lo
export XDG_CACHE_HOME=${TMPDIR:-/tmp}/ferry-bench-ifunc-$$
trap 'rm -rf "$XDG_CACHE_HOME"' EXIT

"$FERRY" bench ifunc --help | grep -q -- "--report" || fail "bench ifunc --help"
tiny=(--servers 2 --log2-entries 10 --depths 1,16 --chases 8 --seconds-per-case 0.05)
out=$(timeout 120 "$FERRY" bench ifunc --tls shm "${tiny[@]}" --json) || fail "shm json run: exit $?"
echo "$out"
[[ $(grep -c '"name"' <<<"$out") -eq 10 ]] ||
  fail "json: expected 10 rows (first chase + 2 depths x am, get, ferry; first <ferry/ifunc.h> chase + 2 depths)"
for base in am get "ferry forward"; do
  grep -q "\"name\": \"round trip (depth-1 chase), ifunc vs $base (2 servers, shm)\"" <<<"$out" || fail "no $base round trip row"
  grep -q "\"name\": \"depth 16 chase, ifunc vs $base (2 servers, shm)\"" <<<"$out" || fail "no depth-16 $base row"
done
grep -q '"name": "first ifunc chase' <<<"$out" || fail "no first-chase row"
for d in "round trip (depth-1 chase)" "depth 16 chase"; do
  grep -q "\"name\": \"$d, <ferry/ifunc.h> on nodes vs ferry forward (2 servers, shm)\"" <<<"$out" ||
    fail "no <ferry/ifunc.h> row: $d"
done
grep -q '"name": "first <ferry/ifunc.h> chase' <<<"$out" || fail "no first <ferry/ifunc.h> chase row"
# Every figure a positive finite number.
while read -r b f; do
  awk -v b="$b" -v f="$f" 'BEGIN { exit !(b > 0 && f > 0 && b < 1e9 && f < 1e9) }' || fail "bad figures $b $f"
done < <(sed -nE 's/.*"baseline": ([^,]+), "ferry": ([^,]+),.*/\1 \2/p' <<<"$out")
out=$(timeout 120 "$FERRY" bench ifunc --tls tcp "${tiny[@]}" --modes ifunc,am) || fail "tcp run: exit $?"
echo "$out"
grep -Eq '^[0-9]+ chases, 0 wrong endpoints$' <<<"$out" || fail "tcp: wrong endpoints"
grep -q 'round trip (depth-1 chase), ifunc vs am (2 servers, tcp)' <<<"$out" || fail "tcp: no round trip row"
echo "samples.bench_ifunc: ok"
