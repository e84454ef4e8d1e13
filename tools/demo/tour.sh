#!/usr/bin/env bash
# `make demo`: a short tour of every sample at a small size (each checks its
# own answers and says "ok"), with a header per sample and its time. Stops
# at the first failure. The samples that need devices (a storage node: root
# and loop devices; the DPU: root, qemu and the aarch64 node) fall back to a
# host node or are skipped, saying why.
#   tools/demo/tour.sh BUILD_DIR
set -uo pipefail
BIN=$(cd "${1:-build}/bin" && pwd)
AARCH64_FERRY=$(dirname "$BIN")/aarch64/bin/ferry
FERRY=$BIN/ferry
export UCX_NET_DEVICES=${UCX_NET_DEVICES:-lo}
steps=7 step=0 skipped=0
tour_start=$(date +%s)

section() {  # section TITLE WHAT
  step=$((step + 1))
  printf '\n== [%d/%d] %s: %s\n' "$step" "$steps" "$1" "$2"
  section_start=$(date +%s%N)
}
run() {  # run COMMAND...: shows it, runs it, stops the tour if it fails
  echo "\$ ${*/#$BIN\//}"
  "$@" || { echo "demo: FAILED (exit $?): $*" >&2; exit 1; }
  printf -- '-- %.1f s\n' "$(( ($(date +%s%N) - section_start) / 1000000 ))e-3"
}
skip() { echo "skipped: $*"; skipped=$((skipped + 1)); }
root_and() { [[ $(id -u) -eq 0 ]] && for t in "$@"; do command -v "$t" >/dev/null || return 1; done; }

section "pointer chase" "a mobile function forwards itself across 3 nodes to follow a random permutation"
run "$FERRY" launch -n 3 -- "$BIN/ferry-demo"

section "pointer chase baselines" "the same chase vs a pre-deployed UCX AM handler and one-sided gets"
run "$FERRY" bench chase --servers 2 --log2-entries 12 --depths 1,16,256 --chases 12 --seconds-per-case 0.1

section "graph" "BFS, PageRank, connected components: mobile code vs pulling the adjacency, checked by Boost.Graph"
run "$FERRY" bench graph --servers 2 --scale 10 --roots 2

section "object space" "a tree linked by ferry::ptr survives a byte copy to another store"
run "$BIN/ferry-sample-object-space"

section "near storage" "filter + aggregate: ship the scan to the node holding the table vs pull the table"
if root_and losetup mkfs.ext4 && [[ -e /dev/loop-control ]]; then
  run "$FERRY" launch -n 1 --storage 1 --storage-size 64MiB -- "$BIN/ferry-near-storage" --mib 16
else
  echo "(no root or loop devices: the table lives on a host node)"
  run "$FERRY" launch -n 1 -- "$BIN/ferry-near-storage" --mib 16
fi

section "rendezvous" "the seed's Alice/Bob/Carol/Dave inference case, placement decided by ferry"
run "$BIN/ferry-rendezvous"

section "smartnic" "key-value lookups on the emulated DPU node (aarch64 under qemu) vs a host node"
if ! root_and qemu-aarch64 ip tc taskset; then
  skip "needs root, qemu-aarch64, ip, tc and taskset (make deps-aarch64)"
elif [[ ! -x $AARCH64_FERRY ]]; then
  skip "no aarch64 node at $AARCH64_FERRY (make build-aarch64)"
else
  run "$FERRY" launch -n 2 --dpu 1 --dpu-binary "$AARCH64_FERRY" --start-timeout-ms 120000 -- \
    "$BIN/ferry-smartnic" --log2-slots 12 --lookups 50 --batch 20000 --batches 2
fi

printf '\ndemo: %d samples ran and checked their answers, %d skipped, in %d s\n' $((steps - skipped)) "$skipped" \
  $(( $(date +%s) - tour_start ))
