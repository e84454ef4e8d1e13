#include "table_scan.hpp"

namespace near_storage {

void accumulate(summary& s, const std::uint64_t* rows, std::uint64_t count, const query& q) {
  for (std::uint64_t i = 0; i < count; ++i) {
    const std::uint64_t row = rows[i];
    s.checksum = (s.checksum ^ row) * 0x100000001b3ull;
    const std::uint64_t sensor = sensor_of(row);
    if (sensor < q.sensor_lo || sensor > q.sensor_hi) continue;
    const std::uint64_t reading = reading_of(row);
    ++s.matched;
    s.sum += reading;
    s.min = reading < s.min ? reading : s.min;
    s.max = reading > s.max ? reading : s.max;
  }
  s.rows += count;
}

}  // namespace near_storage

near_storage::summary near_storage_scan(ferry::context& cx, ferry::ref<std::uint64_t> table, std::uint64_t n,
                                        near_storage::query q) {
  constexpr std::uint64_t kWords = 32768;
  std::uint64_t buf[kWords];
  near_storage::summary s;
  for (std::uint64_t at = 0; at < n; at += kWords) {
    const std::uint64_t count = n - at < kWords ? n - at : kWords;
    cx.read(table + at, buf, count);
    near_storage::accumulate(s, buf, count, q);
  }
  return s;
}

void near_storage_fill(ferry::context& cx, ferry::ref<std::uint64_t> table, std::uint64_t n) {
  std::uint64_t* rows = cx.local(table, n);
  for (std::uint64_t i = 0; i < n; ++i) rows[i] = near_storage::row_at(i);
}
