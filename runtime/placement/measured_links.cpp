// ⑤ place: the bandwidths this process measured of its links.
#include "placement/measured_links.hpp"

#include <algorithm>

namespace ferry::placement_inputs {

void measured_links::transferred(std::uint32_t node, std::uint64_t bytes, clock::duration took) {
  if (bytes < kMinBytes) return;
  const double us = std::max(1.0, std::chrono::duration<double, std::micro>(took).count());
  const double rate = static_cast<double>(bytes) / us;
  std::lock_guard lock(mu_);
  auto [it, fresh] = bytes_per_us_.try_emplace(node, rate);
  // A moving mean (a new transfer weighs 1/4): a link changes seldom, and
  // one transfer slowed by a busy machine should not halve its figure.
  if (!fresh) it->second = 0.75 * it->second + 0.25 * rate;
}

link_figures measured_links::link(std::uint32_t node, link_figures assumed) const {
  std::lock_guard lock(mu_);
  if (const auto it = bytes_per_us_.find(node); it != bytes_per_us_.end()) assumed.bytes_per_us = it->second;
  return assumed;
}

}  // namespace ferry::placement_inputs
