// Mobile functions the runtime tests ship to nodes.
#pragma once

#include <cstdint>

#include <ferry/ferry.hpp>

namespace rt_test {

/// A shard of a pointer-chase table: every shard knows all shards; entry i of
/// the whole table lives in shard i % kShards at slot i / kShards.
inline constexpr std::uint64_t kShards = 3;
struct shard_header {
  ferry::ref<shard_header> shards[kShards];
};

[[ferry::mobile]] std::uint64_t add(ferry::context& cx, ferry::ref<std::uint64_t> cell, std::uint64_t x);
[[ferry::mobile]] std::uint32_t where(ferry::context& cx, ferry::ref<std::uint64_t> cell);
[[ferry::mobile]] std::uint64_t chase(ferry::context& cx, ferry::ref<shard_header> here, std::uint64_t index,
                                      std::uint32_t depth);
[[ferry::mobile]] std::uint64_t read_cell(ferry::context& cx, ferry::ref<std::uint64_t> cell);
[[ferry::mobile]] std::uint64_t sum_two(ferry::context& cx, ferry::ref<std::uint64_t> a, ferry::ref<std::uint64_t> b);
[[ferry::mobile]] std::uint64_t spin(ferry::context& cx, ferry::ref<std::uint64_t> cell, std::uint64_t iterations);
/// *a + spin(b, iterations), the spin run as a nested call where b lives.
[[ferry::mobile]] std::uint64_t nested_spin(ferry::context& cx, ferry::ref<std::uint64_t> a, ferry::ref<std::uint64_t> b,
                                            std::uint64_t iterations);
[[ferry::mobile]] std::uint64_t read_past_end(ferry::context& cx, ferry::ref<std::uint64_t> cell);
/// Writes seed + i into the `count` words at `arr` through cx.local(arr,
/// count); returns their sum.
[[ferry::mobile]] std::uint64_t fill(ferry::context& cx, ferry::ref<std::uint64_t> arr, std::uint64_t count,
                                     std::uint64_t seed);
/// Runs on `cell`'s node until the word at `flag` (an object on the same
/// node) is not zero, or for `max_turns` turns; returns the turns taken.
[[ferry::mobile]] std::uint64_t hold_until(ferry::context& cx, ferry::ref<std::uint64_t> cell,
                                           ferry::ref<std::uint64_t> flag, std::uint64_t max_turns);
/// cx.local(cell, count), then increments the first word.
[[ferry::mobile]] std::uint64_t local_count(ferry::context& cx, ferry::ref<std::uint64_t> cell, std::uint64_t count);
/// The sum of the `count` words at `arr`, read through cx.view(arr, count).
[[ferry::mobile]] std::uint64_t view_sum(ferry::context& cx, ferry::ref<std::uint64_t> arr, std::uint64_t count);
/// Writes `value` into the word at `cell` through the read-only pointer
/// cx.view gave (a const_cast): what a persistent node must not let through.
[[ferry::mobile]] std::uint64_t write_through_view(ferry::context& cx, ferry::ref<std::uint64_t> cell,
                                                   std::uint64_t value);
/// Has cx.read write the word at `from` into the read-only pointer cx.view
/// gave for `cell` (the runtime as a confused deputy): the word read.
[[ferry::mobile]] std::uint64_t read_into_view(ferry::context& cx, ferry::ref<std::uint64_t> cell,
                                               ferry::ref<std::uint64_t> from);
/// Views the `count` words at `arr`, then the word `at` of them again (a
/// second view of one object in one call): that word, or ~0 if the second
/// view is not the same image at the same place.
[[ferry::mobile]] std::uint64_t view_again(ferry::context& cx, ferry::ref<std::uint64_t> arr, std::uint64_t count,
                                           std::uint64_t at);
/// Reads the word at `cell` through cx.view, then adds `x` to it through
/// cx.local (one object viewed, then written, in one call): the new value.
[[ferry::mobile]] std::uint64_t view_then_add(ferry::context& cx, ferry::ref<std::uint64_t> cell, std::uint64_t x);
/// Takes the `n` words at `table` for writing (one cx.local), then streams
/// them in order with cx.read, `chunk` words (at most 16384) at a time,
/// writing each chunk's first word just before reading it: how many chunks
/// read back their own write (a read served from bytes read ahead of the
/// write would not).
[[ferry::mobile]] std::uint64_t write_then_stream(ferry::context& cx, ferry::ref<std::uint64_t> table, std::uint64_t n,
                                                  std::uint64_t chunk);

/// Not mobile: the runtime must refuse to ship it.
std::uint64_t not_mobile(ferry::context& cx, ferry::ref<std::uint64_t> cell);

/// The same chase computed locally, for checking.
std::uint64_t chase_locally(const std::uint64_t* next, std::uint64_t index, std::uint32_t depth);

}  // namespace rt_test

#include <vector>

#include <ferry/runtime.hpp>

namespace rt_test {

// Host-side setup shared by the runtime suites (data.cpp).

/// A one-element object on `node` holding `value`.
ferry::ref<std::uint64_t> cell_on(ferry::runtime& rt, std::uint32_t node, std::uint64_t value);

/// A random permutation of `entries` spread over kShards shards on nodes
/// 0..kShards-1, laid out as chase() expects.
struct chase_table {
  std::vector<std::uint64_t> next;
  ferry::ref<shard_header> shards[kShards];
};
chase_table make_chase_table(ferry::runtime& rt, std::uint64_t entries, std::uint64_t seed);

}  // namespace rt_test
