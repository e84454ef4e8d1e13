// ⑤ place: what automatic placement measured of its own calls — per
// function and place, the mean time to the answer of recent calls and how
// many are on their way (placement_candidate::observed_us, observing).
// One table per runtime; its calls come from the invoking threads (look,
// sent) and from whichever thread delivers an answer (answered).
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <unordered_map>

#include <ferry/object_id.hpp>
#include <ferry/placement.hpp>
#include <ferry/status.hpp>

namespace ferry::placement_inputs {

class measured_calls {
 public:
  using clock = std::chrono::steady_clock;
  /// One function (its code object's id) at one node; `pulled`: sent there
  /// to run on pulled data (placement_info::how::pulled), else to the owner.
  struct place {
    object_id code;
    std::uint32_t node = 0;
    bool pulled = false;
    bool operator==(const place&) const = default;
  };
  struct figure {
    double us = 0;           ///< mean time to the answer; 0: none within kObservedForMs
    bool on_the_way = false; ///< calls sent there not answered yet
  };

  [[nodiscard]] figure look(const place& p, clock::time_point now) const;
  /// A call leaves for `p`.
  void sent(const place& p);
  /// Its answer came after `took`: a result, or an error. Only a result and
  /// `timeout` say how long the place takes; other errors (a dead peer, a
  /// fault in the code) end the call without measuring it.
  void answered(const place& p, clock::duration took, const status& s, clock::time_point now);
  /// A call that ended without measuring the place: it carried the code,
  /// so its time includes shipping and compiling it (the cost model's
  /// `code` term, which a place that has the code does not pay again).
  void ended(const place& p);

 private:
  struct hash {
    std::size_t operator()(const place& p) const noexcept {
      return std::hash<object_id>{}(p.code) ^ (static_cast<std::size_t>(p.node) << 1 | (p.pulled ? 1 : 0));
    }
  };
  struct entry {
    double mean_us = 0;
    clock::time_point at{};  ///< of the last measured answer
    std::uint32_t on_the_way = 0;
  };
  /// An answer (or the end) of a call to `p` came: one fewer on the way (mu_ held).
  entry& arrived(const place& p);
  mutable std::mutex mu_;
  std::unordered_map<place, entry, hash> entries_;
};

}  // namespace ferry::placement_inputs
