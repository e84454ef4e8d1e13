// Mobile functions that misbehave, for the containment tests: each is called
// on a cell so the call runs where the cell lives.
#pragma once

#include <cstdint>

#include <ferry/ferry.hpp>

namespace rt_test {

/// Writes 1 to `address` (0: a null write; far away: an unmapped page).
[[ferry::mobile]] std::uint64_t write_at(ferry::context& cx, ferry::ref<std::uint64_t> cell, std::uint64_t address);
/// *cell / by (by = 0: SIGFPE).
[[ferry::mobile]] std::uint64_t divide(ferry::context& cx, ferry::ref<std::uint64_t> cell, std::uint64_t by);
/// __builtin_trap() when `yes`, else *cell.
[[ferry::mobile]] std::uint64_t trap_if(ferry::context& cx, ferry::ref<std::uint64_t> cell, std::uint64_t yes);
/// Recursion `limit` deep with a 512-byte frame each (a huge limit: stack overflow).
[[ferry::mobile]] std::uint64_t recurse(ferry::context& cx, ferry::ref<std::uint64_t> cell, std::uint64_t limit);
/// A 1 GiB local array.
[[ferry::mobile]] std::uint64_t huge_frame(ferry::context& cx, ferry::ref<std::uint64_t> cell, std::uint64_t index);
/// Increments *cell for ever.
[[ferry::mobile]] std::uint64_t loop_forever(ferry::context& cx, ferry::ref<std::uint64_t> cell);
/// Calls itself twice per level, `depth` levels deep, with no loop: 2^depth
/// calls (only per-call fuel can stop depth 60).
[[ferry::mobile]] std::uint64_t fan_out(ferry::context& cx, ferry::ref<std::uint64_t> cell, std::uint64_t depth);

}  // namespace rt_test
