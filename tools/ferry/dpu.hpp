// The emulated DPU/SmartNIC of `ferry launch --dpu K` (docs/devices.md): the
// aarch64 build of `ferry node` under qemu-aarch64, in a network namespace of
// its own joined to the host by a veth pair, pinned with taskset, capped by
// cgroup v1 (CPU quota, memory limit), its link rate shaped by `tc tbf` on
// both ends of the veth; link latency comes from ferry's transport
// (`ferry node --link-latency-us`), since this kernel has no netem.
//
// Teardown does not depend on the launcher finishing its work: the namespace
// belongs to the DPU's process alone (unshare, never `ip netns add`), so when
// that process dies — it dies with the launcher (PR_SET_PDEATHSIG) — the
// kernel removes the namespace and with it both ends of the veth. The
// cgroups are removed by ~dpu; ones left by a launcher that was killed
// outright are removed by the next launch (sweep_stale_cgroups, host_tools.hpp).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <ferry/status.hpp>

namespace ferry::cli {

/// The profile of one emulated DPU.
struct dpu_profile {
  std::string binary;       ///< the aarch64 `ferry` executable
  std::string cpu = "cortex-a72";  ///< qemu -cpu and the node's JIT CPU (BlueField-2: cortex-a72)
  std::string cores;        ///< host CPUs it may run on (taskset -c); empty: the last CPU
  double cpu_share = 1.0;   ///< cgroup CPU quota, in CPUs
  std::uint64_t memory = std::uint64_t{1} << 30;  ///< cgroup memory limit, bytes
  std::uint64_t bits_per_second = 10'000'000'000;  ///< tc tbf rate each way
  std::uint32_t latency_us = 5;  ///< one-way link latency (ferry's transport)
};

/// One DPU: its namespace, veth, cgroups and process.
class dpu {
 public:
  /// Names and addresses unique to (launcher pid, k); nothing is created yet.
  dpu(std::uint32_t k, dpu_profile profile);
  ~dpu();
  dpu(const dpu&) = delete;
  dpu& operator=(const dpu&) = delete;

  /// The host end of the veth: what processes on the host side give UCX
  /// (UCX_NET_DEVICES) to reach this DPU.
  [[nodiscard]] const std::string& host_device() const { return host_dev_; }

  /// Start `node_args` (the arguments after `ferry`) on the DPU: fork a
  /// child into a new network namespace, wire the veth, tc and cgroups to it,
  /// then let it exec qemu. `env` is added to its environment, `output_fd`
  /// becomes its stdout and stderr. Errors: io_error / unsupported naming
  /// the step that failed (everything made so far is undone).
  result<pid_t> start(const std::vector<std::string>& node_args,
                      const std::vector<std::pair<std::string, std::string>>& env, int output_fd);

 private:
  result<void> wire(pid_t child);

  std::uint32_t k_;
  dpu_profile p_;
  std::string host_dev_, dpu_dev_, host_ip_, dpu_ip_, cgroup_;
  pid_t pid_ = 0;
  bool cgroups_made_ = false;
};

}  // namespace ferry::cli
