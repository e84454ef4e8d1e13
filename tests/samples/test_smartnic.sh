#!/usr/bin/env bash
# The SmartNIC sample at a small size: the key-value lookups run on the
# emulated DPU node (aarch64 under qemu) and on a host node; every answer is
# checked by the program (exit 1 otherwise) and each figure must be there.
# Exit 77 (skipped) with the reason where root, qemu or the aarch64 build is
# missing, like the device tests.
set -euo pipefail
FERRY=$1
SAMPLE=$2
DPU_FERRY=$3
source "$(dirname "$0")/../device/dpu_requirements.sh"
require_dpu "$DPU_FERRY"

out=$(timeout 240 "$FERRY" launch -n 2 --dpu 1 --dpu-binary "$DPU_FERRY" --start-timeout-ms 120000 -- \
  "$SAMPLE" --log2-slots 12 --lookups 20 --batch 10000 --batches 2 2>&1) || fail "exit $?: $out"
echo "$out"
grep -q '^  node 0 (host, x86_64-.*: 0 wrong answers$' <<<"$out" || fail "host node"
grep -q '^  node 1 (dpu, aarch64-unknown-linux-gnu cortex-a72, .*: 0 wrong answers$' <<<"$out" || fail "DPU node"
for r in 'cold lookup, ms' 'warm lookup, median us' 'batch code optimized, ms' 'batched lookups, 1000/s'; do
  grep -Eq "^$r +[0-9.]+ +[0-9.]+ +[0-9.]+x$" <<<"$out" || fail "no row '$r'"
done
grep -q '^ok: every lookup' <<<"$out" || fail "no ok line"
! "$SAMPLE" --log2-slots 40 >/dev/null 2>&1 || fail "--log2-slots 40 accepted"
echo "ok: lookups on the DPU node and on the host node gave the expected answers"
