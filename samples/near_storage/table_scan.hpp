// The near-storage scan, one mobile source for every program that scans a
// table on a storage node: samples/near_storage, `ferry bench device` and
// tests/device/storage_client.
//
// A table is an object of 64-bit rows. Row i of the tables they write is
// row_at(i); a row's bits 48..63 are a sensor id, bits 0..31 a reading. A
// scan filters the rows whose sensor is in [sensor_lo, sensor_hi] and
// aggregates their readings (count, sum, min, max), and checksums every row
// (FNV-1a over the words: what the bench and the test compare).
#pragma once

#include <cstdint>

#include <ferry/ferry.hpp>

namespace near_storage {

/// Row i of the tables the sample, the bench and the storage test write.
inline std::uint64_t row_at(std::uint64_t i) { return (i + 1) * 0x9e3779b97f4a7c15ull ^ (i >> 7); }
inline std::uint32_t sensor_of(std::uint64_t row) { return static_cast<std::uint32_t>(row >> 48); }
inline std::uint32_t reading_of(std::uint64_t row) { return static_cast<std::uint32_t>(row); }

/// WHERE sensor BETWEEN sensor_lo AND sensor_hi.
struct query {
  std::uint64_t sensor_lo = 0;
  std::uint64_t sensor_hi = 0xffff;
};

/// What a scan returns (48 bytes, whatever the table's size).
struct summary {
  std::uint64_t rows = 0;      ///< rows scanned
  std::uint64_t matched = 0;   ///< rows the filter kept
  std::uint64_t sum = 0;       ///< of their readings
  std::uint64_t min = ~std::uint64_t{0};
  std::uint64_t max = 0;
  std::uint64_t checksum = 0xcbf29ce484222325ull;  ///< FNV-1a over every row's word
  bool operator==(const summary&) const = default;
};

/// Adds `count` rows to `s`: the one loop the mobile scan and a caller
/// scanning pulled rows both run.
void accumulate(summary& s, const std::uint64_t* rows, std::uint64_t count, const query& q);

}  // namespace near_storage

/// Ship the code: scans the `n` rows of `table` where the node keeps them,
/// streamed with cx.read in 256 KiB chunks into a buffer on the stack (on a
/// storage node: O_DIRECT reads, the next 4 MiB read ahead by the store
/// while the loop runs). One long call: the sample and `ferry bench device`
/// preload it at the optimized tier (ferry::preload_options::optimized).
[[ferry::mobile]] near_storage::summary near_storage_scan(ferry::context& cx, ferry::ref<std::uint64_t> table,
                                                          std::uint64_t n, near_storage::query q);

/// Writes row_at(i) into the `n` rows of `table` where it lives (setting up
/// a large table does not cross the network).
[[ferry::mobile]] void near_storage_fill(ferry::context& cx, ferry::ref<std::uint64_t> table, std::uint64_t n);
