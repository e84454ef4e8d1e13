#!/usr/bin/env bash
# The rendezvous sample (the seed's Alice/Bob/Carol/Dave case, placement
# decided by ferry) at its default size: every answer must match the
# caller's own inference (the program exits 1 otherwise), and the places
# ferry chose must be the seed's: Bob while the cluster is idle, Carol
# (pulling the model) for Alice while Bob is saturated, Dave himself for his
# small model, Bob for the fixed placement. Bad options are refused.
set -euo pipefail
SAMPLE=$1
fail() { echo "FAIL: $*" >&2; exit 1; }
export UCX_NET_DEVICES=lo
out=$(timeout 120 "$SAMPLE") || fail "exit $?: $out"
echo "$out"
grep -Eq '^  Alice, automatic \(first call\) +ran on Bob +\(owner\) .* answer ok$' <<<"$out" || fail "idle: not on Bob"
[[ $(grep -Ec '^  Alice, automatic +ran on Carol +\(pulled\) .* answer ok$' <<<"$out") -eq 3 ]] ||
  fail "Bob saturated: Alice's calls did not all run on Carol"
grep -Eq '^  Dave, automatic \(small model\) +ran on Dave +\(caller\) .* answer ok$' <<<"$out" || fail "Dave"
grep -Eq '^  Alice, fixed placement \(the owner\) ran on Bob +\(owner\) .* answer ok$' <<<"$out" || fail "fixed"
grep -Eq "^Carol's heartbeats: 3 calls on pulled data" <<<"$out" || fail "Carol's report"
grep -q '^ok: every answer matches' <<<"$out" || fail "no ok line"
! "$SAMPLE" --tls rdma >/dev/null 2>&1 || fail "--tls rdma accepted"
! "$SAMPLE" --window 1 >/dev/null 2>&1 || fail "--window 1 accepted"
echo "ok: ferry placed the seed's calls where the seed says and every answer matches"
