#!/usr/bin/env bash
# The near-storage sample at a small size: an 8 MiB table, the filter +
# aggregate shipped to the node holding it and the table pulled to the
# caller; both must equal the answer computed from the generator (the
# program exits 1 otherwise). On a storage node (loop device, O_DIRECT) where
# root and losetup are there, else on a host node, saying so.
set -euo pipefail
FERRY=$1
SAMPLE=$2
fail() { echo "FAIL: $*" >&2; exit 1; }
export UCX_NET_DEVICES=lo
if [[ $(id -u) -eq 0 && -e /dev/loop-control ]] && command -v losetup >/dev/null && command -v mkfs.ext4 >/dev/null; then
  nodes=(-n 1 --storage 1 --storage-size 64MiB)
  kind=storage
else
  echo "no root or loop devices: the table lives on a host node"
  nodes=(-n 1)
  kind=host
fi
out=$(timeout 120 "$FERRY" launch "${nodes[@]}" -- "$SAMPLE" --mib 8 --sensors 100,2000) || fail "exit $?: $out"
echo "$out"
grep -q "^table: 8 MiB (1048576 rows) on node 0 ($kind, " <<<"$out" || fail "not on a $kind node"
grep -Eq '^ship the scan +[1-9][0-9]* .* ok$' <<<"$out" || fail "shipped scan"
grep -Eq '^pull the table +[1-9][0-9]* .* ok$' <<<"$out" || fail "pulled table"
grep -q '^ok: ' <<<"$out" || fail "no ok line"
# A bad filter is refused before anything starts.
! "$SAMPLE" --sensors 5 >/dev/null 2>&1 || fail "--sensors 5 accepted"
! "$SAMPLE" --mib 0 >/dev/null 2>&1 || fail "--mib 0 accepted"
echo "ok: near-storage scan and pulled table agree with the generator ($kind node)"
