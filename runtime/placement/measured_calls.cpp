// ⑤ place: the times to the answer automatic placement measured.
#include "placement/measured_calls.hpp"

#include <algorithm>

namespace ferry::placement_inputs {

namespace {
constexpr auto kFresh = std::chrono::milliseconds(kObservedForMs);
}

measured_calls::figure measured_calls::look(const place& p, clock::time_point now) const {
  std::lock_guard lock(mu_);
  const auto it = entries_.find(p);
  if (it == entries_.end()) return {};
  const entry& e = it->second;
  return {e.mean_us > 0 && now - e.at < kFresh ? e.mean_us : 0, e.on_the_way > 0};
}

void measured_calls::sent(const place& p) {
  std::lock_guard lock(mu_);
  ++entries_[p].on_the_way;
}

measured_calls::entry& measured_calls::arrived(const place& p) {
  entry& e = entries_[p];
  if (e.on_the_way > 0) --e.on_the_way;
  return e;
}

void measured_calls::ended(const place& p) {
  std::lock_guard lock(mu_);
  (void)arrived(p);
}

void measured_calls::answered(const place& p, clock::duration took, const status& s, clock::time_point now) {
  std::lock_guard lock(mu_);
  entry& e = arrived(p);
  if (!s.ok() && s.code() != errc::timeout) return;
  const double us = std::max(1.0, std::chrono::duration<double, std::micro>(took).count());
  // A moving mean (weight 1/2: a place's load changes fast), started afresh
  // once the last figure has gone stale.
  e.mean_us = e.mean_us > 0 && now - e.at < kFresh ? (e.mean_us + us) / 2 : us;
  e.at = now;
}

}  // namespace ferry::placement_inputs
