#!/usr/bin/env bash
# The pointer chase across the three kinds of node (docs/devices.md):
# `ferry launch -n 3 --dpu 1 --storage 1 -- ferry-demo` puts one shard on a
# host node (x86), one on the emulated DPU (the aarch64 node under qemu) and
# one on the storage node (its objects on a loop device); the mobile `chase`
# forwards itself between them, and every endpoint must equal the same chase
# followed locally (the sample checks that and says "ok: ..."). Afterwards
# no veth, cgroup, loop device or node process of that launch is left.
# Exit 77 (skipped) with the reason where root, qemu, the aarch64 build or
# loop devices are missing.
set -euo pipefail
FERRY=$1
DEMO=$2
DPU_FERRY=$3
source "$(dirname "$0")/dpu_requirements.sh"
require_dpu "$DPU_FERRY" losetup mkfs.ext4 blkid mount
[[ -e /dev/loop-control ]] || skip "no loop device support (/dev/loop-control)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

start=$(date +%s%N)
"$FERRY" launch -n 3 --dpu 1 --storage 1 --dpu-binary "$DPU_FERRY" --storage-size 64MiB --start-timeout-ms 120000 -- \
  sh -c 'echo "$FERRY_RENDEZVOUS" > '"$work/rendezvous"'; exec "$0"' "$DEMO" >"$work/out" 2>"$work/err" &
launch=$!
wait $launch || fail "launch -n 3 --dpu 1 --storage 1: $(cat "$work/out" "$work/err")"
took=$(( ($(date +%s%N) - start) / 1000000 ))
cat "$work/out"
grep -q "^  shard 0 on node 0: [0-9]* entries (host, x86_64-" "$work/out" || fail "shard 0 is not on an x86 host node"
grep -q "^  shard 1 on node 1: [0-9]* entries (dpu, aarch64-unknown-linux-gnu cortex-a72)$" "$work/out" \
  || fail "shard 1 is not on the aarch64 DPU node"
grep -q "^  shard 2 on node 2: [0-9]* entries (storage, x86_64-" "$work/out" || fail "shard 2 is not on the storage node"
[[ $(grep -c "expected.* ok " "$work/out") -eq 5 ]] || fail "not every chase reached the local walk's endpoint"
grep -q "^ok: the chase forwarded itself across the nodes" "$work/out" || fail "the chase: $(cat "$work/err")"
echo "launch -n 3 --dpu 1 --storage 1 with the chase: $took ms"

left="veths: $(ip -o link show | grep -c "fy${launch}d" || true)"
left+=" cgroups: $({ ls -d /sys/fs/cgroup/{cpu,memory}/ferry-${launch}-dpu* 2>/dev/null || true; } | wc -l)"
left+=" loops: $(losetup -a | grep -c "$(cat "$work/rendezvous")/" || true)"
left+=" nodes: $({ pgrep -f "node --index [0-9]+ --rendezvous $(cat "$work/rendezvous") " || true; } | wc -l)"
[[ $left == "veths: 0 cgroups: 0 loops: 0 nodes: 0" ]] || fail "left after the launch: $left"
echo "ok: the chase walked a host, an aarch64 DPU and a storage shard and matched the local walk"
