#!/usr/bin/env bash
# `ferry launch`: runs the program against N real node processes, returns its
# exit status, and leaves no node behind whatever the program does.
set -euo pipefail
FERRY=$1
DEMO=$2
fail() { echo "FAIL: $*" >&2; exit 1; }
# This test's clusters live under its own directory (ferry launch makes them
# in TMPDIR), so the count of nodes left behind sees no other test's nodes.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export TMPDIR=$work
nodes_left() { { pgrep -f "node --index [0-9]+ --rendezvous $work/ferry-cluster-" || true; } | wc -l; }

"$FERRY" launch --help | grep -q -- "--nodes" || fail "launch --help"
"$FERRY" launch -n 2 -- true || fail "true must exit 0"
set +e
"$FERRY" launch -n 2 -- false; rc=$?
[[ $rc -eq 1 ]] || fail "false: expected 1, got $rc"
"$FERRY" launch -n 2 -- sh -c 'kill -9 $$'; rc=$?
[[ $rc -eq 137 ]] || fail "killed program: expected 137, got $rc"
"$FERRY" launch -n 2 -- /nonexistent/program 2>/dev/null; rc=$?
[[ $rc -eq 127 ]] || fail "missing program: expected 127, got $rc"
"$FERRY" launch 2>/dev/null; rc=$?
[[ $rc -ne 0 ]] || fail "no program must fail"
set -e
# Nodes that cannot start: the launch fails at once (not after the 20 s start
# timeout) with the node's exit status and what it printed, and PROGRAM never runs.
ms() { echo $(( $(date +%s%N) / 1000000 )); }
expect_fast_failure() {  # expect_fast_failure PATTERN LAUNCH-ARGS... : exits non-zero within 5 s saying PATTERN
  local pattern=$1; shift
  local t0 rc took
  t0=$(ms)
  set +e
  "$FERRY" launch "$@" -- touch "$work/ran" 2>"$work/err"; rc=$?
  set -e
  took=$(( $(ms) - t0 ))
  [[ $rc -ne 0 ]] || fail "launch $*: expected failure, got rc=0"
  (( took < 5000 )) || fail "launch $*: took $took ms to fail (want < 5000)"
  grep -q -- "$pattern" "$work/err" || fail "launch $*: message does not say '$pattern': $(cat "$work/err")"
  [[ ! -e $work/ran ]] || fail "launch $*: PROGRAM ran although the nodes did not start"
  echo "launch $*: failed in $took ms: $(head -c 300 "$work/err" | tr '\n' '|')" >&2
}
expect_fast_failure "executors.*0" -n 2 -e 0
expect_fast_failure "node [01] exited with status [1-9].* before the cluster started; it said:" -n 2 --tls bogus
grep -q "ferry node [01]: .*TLS=bogus" "$work/err" && grep -q "transport .bogus. is not available" "$work/err" || fail "--tls bogus: the node's own message is not shown: $(cat "$work/err")"
touch "$work/a-file"
expect_fast_failure "store-root $work/a-file is not a directory" -n 2 --store-root "$work/a-file"
# A store root the launcher accepts but one node cannot use: only the node can tell.
mkdir "$work/root" && touch "$work/root/node1"
expect_fast_failure "node 1 exited with status [1-9].* before the cluster started; it said:" -n 2 --store-root "$work/root"
grep -q "ferry node 1: .*node1" "$work/err" || fail "bad node store: the node's own message is not shown: $(cat "$work/err")"

# --inline-budget-us reaches every node (their command lines).
"$FERRY" launch -n 2 --inline-budget-us 250 -- sh -c '
  for i in 0 1; do
    pgrep -f -- "node --index $i --rendezvous $FERRY_RENDEZVOUS .*--inline-budget-us 250" >/dev/null || exit 1
  done' || fail "--inline-budget-us not passed to every node"

# --untrusted and --trust-keys reach every node (their command lines), and
# signed mobile code runs there (signing itself: test_sign.sh).
"$FERRY" launch --help | grep -q -- "--untrusted" || fail "launch --help does not show --untrusted"
mkdir "$work/keys"
"$FERRY" sign --keygen "$work/keys/test" >/dev/null
"$FERRY" launch -n 2 --untrusted --trust-keys "$work/keys" -- sh -c '
  for i in 0 1; do
    pgrep -f -- "node --index $i --rendezvous $FERRY_RENDEZVOUS .*--untrusted --trust-keys" >/dev/null || exit 1
  done' || fail "--untrusted --trust-keys not passed to every node"
cp "$DEMO" "$work/demo-signed"
"$FERRY" sign --key "$work/keys/test.key" "$work/demo-signed" >/dev/null
"$FERRY" launch -n 3 --untrusted --trust-keys "$work/keys" -- "$work/demo-signed" | grep -q "^ok: the chase forwarded" \
  || fail "signed demo on --untrusted nodes"

# The program sees its cluster.
"$FERRY" launch -n 3 -- sh -c 'test -n "$FERRY_RENDEZVOUS" && test "$(cat "$FERRY_RENDEZVOUS/size")" = 3' \
  || fail "FERRY_RENDEZVOUS not passed"
# The real demo: mobile code forwarded across 3 node processes.
"$FERRY" launch -n 3 -- "$DEMO" | tee /dev/stderr | grep -q "^ok: the chase forwarded" || fail "demo"
sleep 0.2
[[ $(nodes_left) -eq 0 ]] || fail "node processes left behind"
echo "cli.launch: ok"
