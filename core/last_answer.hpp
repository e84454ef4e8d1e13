// A thread's memory of the last answer a locked table gave it, for tables a
// warm call asks the same question of again and again (the code registry:
// which code object is this function; the router: who owns this object).
//
// The table counts its changes in a `generation`, bumped under its lock by
// every writer. A reader loads the generation before it takes the lock and
// keeps the answer tagged with it; an answer is reused only while the
// generation has not moved, so it is never older than the table. Tables are
// told apart by a serial number, not by address: a table destroyed and
// another built at the same place must not inherit its answers.
#pragma once

#include <atomic>
#include <cstdint>

namespace ferry::core {

/// A number no other table of this process has had (for last_answer).
inline std::uint64_t next_table_serial() {
  static std::atomic<std::uint64_t> serial{0};
  return serial.fetch_add(1, std::memory_order_relaxed) + 1;
}

/// The last answer of one question kind, per thread. `Key` and `Answer` are
/// copyable values; `Key` has ==.
template <class Key, class Answer>
struct last_answer {
  std::uint64_t table = 0;  // 0: nothing remembered
  std::uint64_t generation = 0;
  Key key{};
  Answer answer{};

  /// The remembered answer to `k` from table `serial` at generation `gen`.
  [[nodiscard]] const Answer* find(std::uint64_t serial, std::uint64_t gen, const Key& k) const {
    return table == serial && generation == gen && key == k ? &answer : nullptr;
  }
  void keep(std::uint64_t serial, std::uint64_t gen, const Key& k, const Answer& a) {
    table = serial;
    generation = gen;
    key = k;
    answer = a;
  }
};

}  // namespace ferry::core
