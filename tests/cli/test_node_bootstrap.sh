#!/usr/bin/env bash
# `ferry node` outside `ferry launch`: the help names every bootstrap mode,
# each mistake is a clear typed error, and a host-list cluster runs the demo.
set -euo pipefail
FERRY=$1
DEMO=$2
fail() { echo "FAIL: $*" >&2; exit 1; }
unset FERRY_RENDEZVOUS FERRY_HOSTS FERRY_BOOTSTRAP PMIX_RANK PMIX_NAMESPACE
export UCX_NET_DEVICES=lo

help=$("$FERRY" node --help)
for word in --rendezvous --hosts --bootstrap mpirun FERRY_HOSTS; do
  grep -q -- "$word" <<<"$help" || fail "ferry node --help does not mention $word"
done
"$FERRY" launch --help | grep -q "ferry node --help" || fail "ferry launch --help does not point to the other modes"

expect_error() {  # expect_error PATTERN ARGS...: exit status 1 and PATTERN on stderr
  local pattern=$1; shift
  local err rc=0
  err=$("$FERRY" node "$@" 2>&1 >/dev/null) || rc=$?
  [[ $rc -eq 1 ]] || fail "ferry node $*: exit $rc, expected 1"
  grep -q -- "$pattern" <<<"$err" || fail "ferry node $*: '$err' does not say '$pattern'"
}
expect_error "invalid_argument: no cluster to join"
expect_error "bad_format: host list entry 2: 'b' has no :PORT" --index 0 --hosts a:1,b
expect_error "needs its index" --hosts 127.0.0.1:1
expect_error "outside the host list of 2 entries" --index 2 --hosts 127.0.0.1:1,127.0.0.1:2
expect_error "unsupported: PMIx_Init failed" --bootstrap pmix
# Ports below the kernel's ephemeral range (32768..), picked at random.
base=$((10000 + RANDOM % 20000))
expect_error "timeout: no answer within 300 ms from node 0 (127.0.0.1:$base)" \
  --index 1 --hosts "127.0.0.1:$base,127.0.0.1:$((base + 1))" --join-timeout-ms 300

# A host-list cluster of 3 nodes on loopback; the demo joins through FERRY_HOSTS.
tmp=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
hosts="127.0.0.1:$base,127.0.0.1:$((base + 1)),127.0.0.1:$((base + 2))"
for i in 0 1 2; do
  "$FERRY" node --index $i --hosts "$hosts" --jit-cache "$tmp/jit" & pids+=($!)
done
FERRY_HOSTS=$hosts timeout 60 "$DEMO" | grep -q "^ok: the chase forwarded" || fail "demo over a host list"
echo "cli.node_bootstrap: ok"
