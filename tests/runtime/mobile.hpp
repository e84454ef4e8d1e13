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
[[ferry::mobile]] std::uint64_t read_past_end(ferry::context& cx, ferry::ref<std::uint64_t> cell);

/// Not mobile: the runtime must refuse to ship it.
std::uint64_t not_mobile(ferry::context& cx, ferry::ref<std::uint64_t> cell);

/// The same chase computed locally, for checking.
std::uint64_t chase_locally(const std::uint64_t* next, std::uint64_t index, std::uint32_t depth);

}  // namespace rt_test
