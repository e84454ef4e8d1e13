// The SmartNIC sample's key-value service: an open-addressing hash table of
// (key, value) slots (key 0: empty), its hot path (lookups) as mobile code
// that runs wherever the table lives: on the emulated DPU node or on a host
// node. The table is filled where it lives (kv_fill) with the keys key_at(i),
// i < count; key_at(i) for i >= count is a miss. value_of(key) is a key's
// value, so the caller knows every answer without reading the table.
#pragma once

#include <cstdint>

#include <ferry/ferry.hpp>

namespace smartnic {

struct slot {
  std::uint64_t key = 0;
  std::uint64_t value = 0;
};

/// The i-th key (never 0) and a key's value.
inline std::uint64_t key_at(std::uint64_t i) { return ((i + 1) * 0x9e3779b97f4a7c15ull) | 1; }
inline std::uint64_t value_of(std::uint64_t key) { return (key ^ (key >> 31)) * 0xbf58476d1ce4e5b9ull; }

/// What a lookup returns.
struct lookup {
  std::uint64_t value = 0;
  std::uint32_t found = 0;
  std::uint32_t node = 0;  ///< cx.node() where it ran
};

/// What a batch of lookups returns: hits and a mix of the values found.
struct batch {
  std::uint64_t hits = 0;
  std::uint64_t mix = 0;
  std::uint32_t node = 0;
  std::uint32_t pad = 0;
};

/// The mix `batch::mix` accumulates, value by value (the caller's check).
inline std::uint64_t mix_in(std::uint64_t mix, std::uint64_t value) { return (mix ^ value) * 0x100000001b3ull; }

}  // namespace smartnic

/// Inserts key_at(i) -> value_of(key_at(i)) for i < count into the
/// `capacity` slots of `table` (a power of two, more than count), where the
/// table lives. Returns the number of keys inserted.
[[ferry::mobile]] std::uint64_t kv_fill(ferry::context& cx, ferry::ref<smartnic::slot> table, std::uint64_t capacity,
                                        std::uint64_t count);
/// The hot path: one lookup of `key`.
[[ferry::mobile]] smartnic::lookup kv_get(ferry::context& cx, ferry::ref<smartnic::slot> table, std::uint64_t capacity,
                                          std::uint64_t key);
/// `count` lookups of key_at(first), key_at(first + 1), ... in one call.
[[ferry::mobile]] smartnic::batch kv_get_batch(ferry::context& cx, ferry::ref<smartnic::slot> table,
                                               std::uint64_t capacity, std::uint64_t first, std::uint64_t count);
