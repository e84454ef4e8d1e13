#!/usr/bin/env bash
# `ferry launch`: runs the program against N real node processes, returns its
# exit status, and leaves no node behind whatever the program does.
set -euo pipefail
FERRY=$1
DEMO=$2
fail() { echo "FAIL: $*" >&2; exit 1; }
nodes_left() { { pgrep -f "node --index [0-9]+ --rendezvous .*/ferry-cluster-" || true; } | wc -l; }
before=$(nodes_left)

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
# The program sees its cluster.
"$FERRY" launch -n 3 -- sh -c 'test -n "$FERRY_RENDEZVOUS" && test "$(cat "$FERRY_RENDEZVOUS/size")" = 3' \
  || fail "FERRY_RENDEZVOUS not passed"
# The real demo: mobile code forwarded across 3 node processes.
"$FERRY" launch -n 3 -- "$DEMO" | tee /dev/stderr | grep -q "^ok: the walk forwarded" || fail "demo"
sleep 0.2
[[ $(nodes_left) -eq $before ]] || fail "node processes left behind"
echo "cli.launch: ok"
