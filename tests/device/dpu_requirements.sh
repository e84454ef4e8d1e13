# Sourced by the tests that launch an emulated DPU node (test_dpu.sh,
# test_chase.sh, tests/samples/test_smartnic.sh). Defines fail and skip, and
# require_dpu DPU_FERRY [TOOL...]: exit 77 (skipped) with the reason where
# root, qemu and the other tools, the aarch64 build or cgroup v1 are missing.
fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIPPED: $*"; exit 77; }

require_dpu() {
  local dpu_ferry=$1; shift
  [[ $(id -u) -eq 0 ]] || skip "needs root (network namespaces, veth, cgroups)"
  local tool
  for tool in qemu-aarch64 ip tc taskset "$@"; do
    command -v "$tool" >/dev/null || skip "$tool is not installed (make deps-aarch64)"
  done
  [[ -x $dpu_ferry ]] || skip "no aarch64 ferry at $dpu_ferry (make build-aarch64, or ninja -C build ferry-aarch64)"
  [[ -d /sys/fs/cgroup/cpu && -d /sys/fs/cgroup/memory ]] || skip "no cgroup v1 cpu and memory controllers"
}
