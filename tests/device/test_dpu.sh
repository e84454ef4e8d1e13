#!/usr/bin/env bash
# The emulated DPU (docs/devices.md): `ferry launch --dpu 1` runs the aarch64
# node under qemu-aarch64 -cpu cortex-a72 in its own network namespace; a real
# call from the x86 client runs there and reports aarch64 / cortex-a72, with
# the same answer as on the x86 node; the namespace's link, its cgroups and
# its processes are gone afterwards, also when PROGRAM crashes.
# Exit 77 (skipped) with the reason where root, qemu or the aarch64 build is missing.
set -euo pipefail
FERRY=$1
CLIENT=$2
DPU_FERRY=$3
fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIPPED: $*"; exit 77; }

[[ $(id -u) -eq 0 ]] || skip "needs root (network namespaces, veth, cgroups)"
for tool in qemu-aarch64 ip tc nsenter taskset; do
  command -v $tool >/dev/null || skip "$tool is not installed (make deps-aarch64)"
done
[[ -x $DPU_FERRY ]] || skip "no aarch64 ferry at $DPU_FERRY (make build-aarch64, or ninja -C build ferry-aarch64)"
[[ -d /sys/fs/cgroup/cpu && -d /sys/fs/cgroup/memory ]] || skip "no cgroup v1 cpu and memory controllers"

# What a launch leaves behind, as one line: DPU veths, DPU cgroups, qemu
# processes running this aarch64 ferry. Other launches may run concurrently:
# compare only what names this test's launcher, by its pid.
leftovers() {  # leftovers PID
  local pid=$1
  echo "veths: $(ip -o link show | grep -c "fy${pid}d" || true)" \
       "cgroups: $(ls -d /sys/fs/cgroup/cpu/ferry-${pid}-dpu* /sys/fs/cgroup/memory/ferry-${pid}-dpu* 2>/dev/null | wc -l)" \
       "qemu: $(pgrep -f "qemu-aarch64 .*${DPU_FERRY} node .*/ferry-cluster-" | wc -l)"
}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

qemu_before=$(pgrep -f "qemu-aarch64 .*${DPU_FERRY} node .*/ferry-cluster-" | wc -l || true)

# 1. One host node, one DPU: the same function on both, identical answers.
start=$(date +%s%N)
"$FERRY" launch -n 2 --dpu 1 --dpu-binary "$DPU_FERRY" --start-timeout-ms 120000 -- "$CLIENT" >"$work/out" 2>"$work/err" &
launch=$!
wait $launch || fail "launch with a DPU failed: $(cat "$work/out" "$work/err")"
took=$(( ($(date +%s%N) - start) / 1000000 ))
cat "$work/out"
grep -q "^node 0 host ran-on x86_64.* sum ok$" "$work/out" || fail "the x86 node: $(cat "$work/out" "$work/err")"
grep -q "^node 1 dpu ran-on aarch64-unknown-linux-gnu cortex-a72 sum ok$" "$work/out" \
  || fail "the DPU node did not run the call as aarch64/cortex-a72: $(cat "$work/out" "$work/err")"
echo "launch -n 2 --dpu 1 with the client: $took ms"
left=$(leftovers $launch)
[[ $left == "veths: 0 cgroups: 0 qemu: $qemu_before" ]] || fail "after a clean run: $left"

# 2. PROGRAM crashes (SIGKILL) while the DPU runs: the launcher still tears
#    down the DPU's namespace, veth, cgroups and qemu process.
set +e
"$FERRY" launch -n 2 --dpu 1 --dpu-binary "$DPU_FERRY" --start-timeout-ms 120000 -- \
  sh -c 'ip -o link show | grep -c "fy${PPID}d" > '"$work/seen"'; ls -d /sys/fs/cgroup/cpu/ferry-${PPID}-dpu0 >> '"$work/seen"'; kill -9 $$' 2>"$work/err" &
launch=$!
wait $launch; rc=$?
set -e
[[ $rc -eq 137 ]] || fail "killed program: expected 137, got $rc: $(cat "$work/err")"
[[ $(head -1 "$work/seen") == 1 ]] || fail "the DPU's veth was not there while PROGRAM ran: $(cat "$work/seen")"
grep -q "ferry-$launch-dpu0" "$work/seen" || fail "the DPU's cgroup was not there while PROGRAM ran: $(cat "$work/seen")"
left=$(leftovers $launch)
[[ $left == "veths: 0 cgroups: 0 qemu: $qemu_before" ]] || fail "after PROGRAM was killed: $left"
echo "ok: DPU call ran on aarch64/cortex-a72; nothing left after a clean run and after a crash"
