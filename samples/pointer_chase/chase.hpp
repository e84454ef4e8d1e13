// The pointer chase every mode of the sample runs (after BitCODE's X-RDMA
// benchmark): a table of 2^k 64-bit entries holding a random permutation
// (fixed seed), split over S shards — entry i lives in shard i % S at slot
// i / S. A chase of depth D from `start` follows `next = table[next]` D times
// and ends at the entry it reached; every mode must reach the same one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include <ferry/ferry.hpp>

namespace ferry {
class runtime;
}

namespace chase_table {

constexpr std::uint32_t kMaxShards = 16;

/// The permutation: 2^log2_entries entries, shuffled with `seed`.
std::vector<std::uint64_t> make(unsigned log2_entries, std::uint64_t seed);
/// Shard s's slots: table[s], table[s + S], table[s + 2S], ...
std::vector<std::uint64_t> shard(const std::vector<std::uint64_t>& table, std::uint32_t s, std::uint32_t shards);
/// The endpoint of a chase of `depth` steps from `start`, followed locally.
std::uint64_t follow(const std::vector<std::uint64_t>& table, std::uint64_t start, std::uint32_t depth);

}  // namespace chase_table

/// A shard object as ferry stores it: this header (every shard knows every
/// shard's reference), then its slots (`slots` 64-bit entries).
struct chase_shard {
  std::uint32_t shards;
  std::uint32_t self;  ///< this shard's index: all[self] names it
  std::uint64_t slots;
  ferry::ref<chase_shard> all[chase_table::kMaxShards];
};

/// Store `table` in the cluster, shard s on node `nodes[s]` (at most
/// kMaxShards), calling `loading(s, entries)` before each shard's put;
/// returns the header every shard starts with (`all` names each shard;
/// `self` and `slots` are left 0). Throws ferry::error.
chase_shard place_shards(ferry::runtime& rt, const std::vector<std::uint64_t>& table,
                         const std::vector<std::uint32_t>& nodes,
                         const std::function<void(std::uint32_t, std::size_t)>& loading = {});

/// ferry mode: follow the chase while the next entry is in this shard; when
/// it is in another, forward the call there. The endpoint goes straight back
/// to the caller.
[[ferry::mobile]] std::uint64_t chase(ferry::context& cx, ferry::ref<chase_shard> here, std::uint64_t index,
                                      std::uint32_t depth);
