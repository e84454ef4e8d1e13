// ⑤ place: what this process measured of its links to the nodes — the
// bandwidth of its own bulk transfers (objects().get and put of at least
// kMinBytes, all chunks from the first request to the last answer) — in
// place of the figure assumed from the transport (for_transport) in
// placement_candidate::link. A link the process moved no bulk data over
// keeps the assumed figure; latencies are always the assumed ones.
// One table per runtime, written by the threads that transfer, read by
// the invoking threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <unordered_map>

#include <ferry/placement.hpp>

namespace ferry::placement_inputs {

class measured_links {
 public:
  using clock = std::chrono::steady_clock;
  /// Transfers below this size say more about round trips than about
  /// bandwidth: not measured.
  static constexpr std::uint64_t kMinBytes = std::uint64_t{256} << 10;

  /// A transfer of `bytes` to or from `node` took `took`, whole.
  void transferred(std::uint32_t node, std::uint64_t bytes, clock::duration took);
  /// `assumed`, with the measured bandwidth to `node` in place of its own
  /// where there is one.
  [[nodiscard]] link_figures link(std::uint32_t node, link_figures assumed) const;

 private:
  mutable std::mutex mu_;
  std::unordered_map<std::uint32_t, double> bytes_per_us_;  ///< a moving mean per node
};

}  // namespace ferry::placement_inputs
