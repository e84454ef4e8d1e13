#!/usr/bin/env bash
# A real mpirun job: `ferry node` ranks and client ranks bootstrap through
# PMIx, the clients run mobile code on every node, and the job ends when the
# clients are done. Also: the mistakes a user can make on the mpirun line.
# Skipped (exit 77) where mpirun is missing.
set -euo pipefail
FERRY=$1
CLIENT=$2
fail() { echo "FAIL: $*" >&2; exit 1; }
if ! command -v mpirun >/dev/null; then
  echo "SKIPPED: mpirun not found (Debian: apt-get install openmpi-bin libpmix-dev)"
  exit 77
fi
unset FERRY_RENDEZVOUS FERRY_HOSTS FERRY_BOOTSTRAP FERRY_NODES
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
MPI=(timeout 60 mpirun --allow-run-as-root --oversubscribe -x UCX_NET_DEVICES=lo)
NODE=("$FERRY" node --jit-cache "$tmp/jit")

# 3 nodes, 1 client.
out=$("${MPI[@]}" -np 3 "${NODE[@]}" : -np 1 "$CLIENT" 3) || fail "3 nodes + 1 client exited $?"
grep -q "^ok: client 3 of 3 nodes" <<<"$out" || fail "3 nodes + 1 client: $out"

# 2 nodes, 2 clients: each client checks, the nodes stop once both have left.
out=$("${MPI[@]}" -np 2 "${NODE[@]}" : -np 2 "$CLIENT" 2) || fail "2 nodes + 2 clients exited $?"
[[ $(grep -c "^ok: client [23] of 2 nodes" <<<"$out") -eq 2 ]] || fail "2 nodes + 2 clients: $out"

# One app runs both (as under srun --multi-prog): FERRY_NODES says which ranks are nodes.
out=$("${MPI[@]}" -x FERRY_NODES=2 -np 3 sh -c \
  'if [ "$PMIX_RANK" -lt 2 ]; then exec "$0" node --jit-cache "$1"; else exec "$2" 2; fi' \
  "$FERRY" "$tmp/jit" "$CLIENT") || fail "FERRY_NODES=2, one app: exited $?"
grep -q "^ok: client 2 of 2 nodes" <<<"$out" || fail "FERRY_NODES=2, one app: $out"

# The program before the nodes on the mpirun line: a clear error, not a hang.
set +e
out=$("${MPI[@]}" -np 1 "$CLIENT" 2 : -np 2 "${NODE[@]}" 2>&1); rc=$?
set -e
[[ $rc -ne 0 && $rc -ne 124 ]] || fail "program first: exit $rc"
# Whichever process reports first (mpirun then stops the others) says what to do.
grep -q -e "put \`ferry node\` first" -e "start the program after \`ferry node\`" <<<"$out" \
  || fail "program first: no hint in: $out"

# Nodes alone: nobody could ever use them.
set +e
out=$("${MPI[@]}" -np 2 "${NODE[@]}" 2>&1); rc=$?
set -e
[[ $rc -ne 0 && $rc -ne 124 ]] || fail "nodes without a client: exit $rc"
grep -q "no client" <<<"$out" || fail "nodes without a client: no hint in: $out"
echo "cluster.pmix: ok"
