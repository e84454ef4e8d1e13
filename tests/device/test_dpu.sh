#!/usr/bin/env bash
# The emulated DPU (docs/devices.md): `ferry launch --dpu 1` runs the aarch64
# node under qemu-aarch64 -cpu cortex-a72 in its own network namespace; a real
# call from the x86 client runs there and reports aarch64 / cortex-a72, with
# the same answer as on the x86 node; the namespace's link, its cgroups and
# its processes are gone afterwards, also when PROGRAM crashes or the
# launcher is killed. A call past the DPU's memory cap fails with
# out_of_memory and the DPU keeps serving.
# Exit 77 (skipped) with the reason where root, qemu or the aarch64 build is missing.
set -euo pipefail
FERRY=$1
CLIENT=$2
DPU_FERRY=$3
source "$(dirname "$0")/dpu_requirements.sh"
require_dpu "$DPU_FERRY" nsenter

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
killed=
trap 'if [[ -n $killed ]]; then kill -9 $killed 2>/dev/null || true; fi; rm -rf "$work"' EXIT

qemu_before=$(pgrep -f "qemu-aarch64 .*${DPU_FERRY} node .*/ferry-cluster-" | wc -l || true)

# 0. The launcher itself is killed (SIGKILL) while its DPU runs: the nodes
#    die with it (PR_SET_PDEATHSIG), the DPU's namespace and veth with them;
#    its empty cgroups stay until the next `ferry launch --dpu` (step 1).
"$FERRY" launch -n 2 --dpu 1 --dpu-binary "$DPU_FERRY" --start-timeout-ms 120000 -- \
  sh -c 'echo "$FERRY_RENDEZVOUS" > '"$work/killed.rv"'; exec sleep 120' 2>"$work/err" &
killed=$!
for _ in $(seq 1200); do [[ -s $work/killed.rv ]] && break; kill -0 $killed 2>/dev/null || break; sleep 0.1; done
[[ -s $work/killed.rv ]] || fail "the launch to kill did not start PROGRAM: $(cat "$work/err")"
dpu_pid=$(pgrep -f "qemu-aarch64 .*${DPU_FERRY} node .*$(cat "$work/killed.rv")") || fail "no DPU process in the launch to kill"
netns=$(readlink /proc/$dpu_pid/ns/net)
kill -9 $killed
wait $killed 2>/dev/null || true
# Nodes, DPU process and network namespace gone (within 10 s).
in_netns() { for p in /proc/[0-9]*; do readlink "$p/ns/net" 2>/dev/null; done | grep -cx "$netns" || true; }
for _ in $(seq 100); do
  nodes=$({ pgrep -f "node --index [0-9]+ --rendezvous $(cat "$work/killed.rv")" || true; } | wc -l)
  [[ $nodes -eq 0 && $(in_netns) -eq 0 ]] && break
  sleep 0.1
done
[[ $nodes -eq 0 ]] || fail "$nodes node processes outlived their killed launcher"
[[ $(in_netns) -eq 0 ]] || fail "processes still in the DPU's network namespace $netns after its launcher was killed"
[[ $(ip -o link show | grep -c "fy${killed}d" || true) -eq 0 ]] || fail "the DPU's veth outlived its killed launcher"
rm -rf "$(cat "$work/killed.rv")"  # its rendezvous directory: nobody else removes it

# 1. One host node, one DPU: the same function on both, identical answers,
#    and on both a local array overrun ends at the frame's stack canary
#    (through a pointer), or at its first byte past the array (in place),
#    and a write through a cx.view pointer is refused (memory_fault). Then on the DPU a call holding more cx.fetch copies (8 x 48 MiB) than
#    its memory cap allows (384 MiB cgroup, objects and copies at most half):
#    the call fails with out_of_memory, the same DPU process answers the
#    next call.
start=$(date +%s%N)
"$FERRY" launch -n 2 --dpu 1 --dpu-binary "$DPU_FERRY" --dpu-memory 384MiB --start-timeout-ms 120000 -- \
  "$CLIENT" memory-cap 48 8 >"$work/out" 2>"$work/err" &
launch=$!
wait $launch || fail "launch with a DPU failed: $(cat "$work/out" "$work/err")"
took=$(( ($(date +%s%N) - start) / 1000000 ))
cat "$work/out"
grep -q "^node 0 host ran-on x86_64.* sum ok$" "$work/out" || fail "the x86 node: $(cat "$work/out" "$work/err")"
grep -q "^node 1 dpu ran-on aarch64-unknown-linux-gnu cortex-a72 sum ok$" "$work/out" \
  || fail "the DPU node did not run the call as aarch64/cortex-a72: $(cat "$work/out" "$work/err")"
grep -q "^node 1 dpu overrun: [.cb]* canary ok$" "$work/out" \
  || fail "the DPU's stack canaries (aarch64): $(cat "$work/out" "$work/err")"
grep -q "^node 1 dpu overrun in place: a* array ok$" "$work/out" \
  || fail "the DPU's checks of accesses computed from a local array (aarch64): $(cat "$work/out" "$work/err")"
grep -q "^node 1 dpu write through a view: memory_fault, object unchanged ok$" "$work/out" \
  || fail "the DPU's write check (aarch64): $(cat "$work/out" "$work/err")"
grep -q "^node 1 dpu memory cap: out_of_memory, still serving (incarnation 1)$" "$work/out" \
  || fail "the DPU's memory cap: $(cat "$work/out" "$work/err")"
grep "memory limit" "$work/err" || true
echo "launch -n 2 --dpu 1 with the client: $took ms"
left=$(leftovers $launch)
[[ $left == "veths: 0 cgroups: 0 qemu: $qemu_before" ]] || fail "after a clean run: $left"
# That launch swept the cgroups the killed launcher left.
left=$(leftovers $killed)
[[ $left == "veths: 0 cgroups: 0 qemu: $qemu_before" ]] || fail "after the killed launcher and a new launch: $left"

# 2. PROGRAM crashes (SIGKILL) while the DPU runs: the launcher still tears
#    down the DPU's namespace, veth, cgroups and qemu process.
set +e
"$FERRY" launch -n 2 --dpu 1 --dpu-binary "$DPU_FERRY" --start-timeout-ms 120000 -- \
  sh -c 'ip -o link show | grep -c "fy${PPID}d" > '"$work/seen"'; ls -d /sys/fs/cgroup/cpu/ferry-${PPID}-dpu0 >> '"$work/seen"';
         echo "$FERRY_RENDEZVOUS" > '"$work/crashed.rv"'; readlink /proc/$(pgrep -P $PPID qemu-aarch64)/ns/net > '"$work/netns"';
         kill -9 $$' 2>"$work/err" &
launch=$!
wait $launch; rc=$?
set -e
[[ $rc -eq 137 ]] || fail "killed program: expected 137, got $rc: $(cat "$work/err")"
[[ $(head -1 "$work/seen") == 1 ]] || fail "the DPU's veth was not there while PROGRAM ran: $(cat "$work/seen")"
grep -q "ferry-$launch-dpu0" "$work/seen" || fail "the DPU's cgroup was not there while PROGRAM ran: $(cat "$work/seen")"
netns=$(cat "$work/netns")
[[ $netns == net:* ]] || fail "PROGRAM did not find the DPU's network namespace: '$netns'"
left=$(leftovers $launch)
left+=" nodes: $({ pgrep -f "node --index [0-9]+ --rendezvous $(cat "$work/crashed.rv")" || true; } | wc -l) netns: $(in_netns)"
[[ $left == "veths: 0 cgroups: 0 qemu: $qemu_before nodes: 0 netns: 0" ]] || fail "after PROGRAM was killed: $left"
echo "ok: DPU call ran on aarch64/cortex-a72; a call past the DPU's memory cap failed with out_of_memory and the DPU kept"
echo "serving; no namespace, veth, cgroup or node process left after a clean run, a crashed PROGRAM or a killed launcher"
