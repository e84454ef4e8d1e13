#include "mobile.hpp"

namespace rt_test {

std::uint64_t add(ferry::context& cx, ferry::ref<std::uint64_t> cell, std::uint64_t x) { return *cx.local(cell) + x; }

std::uint32_t where(ferry::context& cx, ferry::ref<std::uint64_t> cell) {
  (void)cx.local(cell);  // fails with not_local unless the cell is here
  return cx.node();
}

std::uint64_t chase(ferry::context& cx, ferry::ref<shard_header> here, std::uint64_t index, std::uint32_t depth) {
  const shard_header* h = cx.local(here);
  for (; depth > 0; --depth) {
    const ferry::ref<shard_header> owner = h->shards[index % kShards];
    if (!(owner == here)) return cx.forward(&chase, owner, index, depth);
    const ferry::ref<std::uint64_t> slot{here.id, sizeof(shard_header) + (index / kShards) * sizeof(std::uint64_t)};
    index = *cx.local(slot);
  }
  return index;
}

std::uint64_t read_cell(ferry::context& cx, ferry::ref<std::uint64_t> cell) { return *cx.local(cell); }

std::uint64_t sum_two(ferry::context& cx, ferry::ref<std::uint64_t> a, ferry::ref<std::uint64_t> b) {
  return *cx.local(a) + cx.invoke(&read_cell, b);
}

std::uint64_t spin(ferry::context& cx, ferry::ref<std::uint64_t> cell, std::uint64_t iterations) {
  volatile const std::uint64_t* p = cx.local(cell);
  std::uint64_t acc = 0;
  for (std::uint64_t i = 0; i < iterations; ++i) acc += *p ^ i;
  return acc;
}

std::uint64_t nested_spin(ferry::context& cx, ferry::ref<std::uint64_t> a, ferry::ref<std::uint64_t> b,
                          std::uint64_t iterations) {
  return *cx.local(a) + cx.invoke(&spin, b, iterations);
}

std::uint64_t hold_until(ferry::context& cx, ferry::ref<std::uint64_t> cell, ferry::ref<std::uint64_t> flag,
                         std::uint64_t max_turns) {
  (void)cx.local(cell);
  volatile const std::uint64_t* f = cx.local(flag);
  std::uint64_t turns = 0;
  while (turns < max_turns && *f == 0) ++turns;
  return turns;
}

std::uint64_t read_past_end(ferry::context& cx, ferry::ref<std::uint64_t> cell) {
  return *cx.local(cell + 1000000);
}

std::uint64_t fill(ferry::context& cx, ferry::ref<std::uint64_t> arr, std::uint64_t count, std::uint64_t seed) {
  std::uint64_t* p = cx.local(arr, count);
  std::uint64_t sum = 0;
  for (std::uint64_t i = 0; i < count; ++i) {
    p[i] = seed + i;
    sum += p[i];
  }
  return sum;
}

std::uint64_t local_count(ferry::context& cx, ferry::ref<std::uint64_t> cell, std::uint64_t count) {
  std::uint64_t* p = cx.local(cell, count);
  return ++p[0];
}

std::uint64_t view_sum(ferry::context& cx, ferry::ref<std::uint64_t> arr, std::uint64_t count) {
  const std::uint64_t* p = cx.view(arr, count);
  std::uint64_t sum = 0;
  for (std::uint64_t i = 0; i < count; ++i) sum += p[i];
  return sum;
}

std::uint64_t write_through_view(ferry::context& cx, ferry::ref<std::uint64_t> cell, std::uint64_t value) {
  auto* p = const_cast<volatile std::uint64_t*>(cx.view(cell));
  *p = value;
  return *p;
}

std::uint64_t read_into_view(ferry::context& cx, ferry::ref<std::uint64_t> cell, ferry::ref<std::uint64_t> from) {
  auto* p = const_cast<std::uint64_t*>(cx.view(cell));
  cx.read(from, p, 1);
  return *p;
}

std::uint64_t view_again(ferry::context& cx, ferry::ref<std::uint64_t> arr, std::uint64_t count, std::uint64_t at) {
  const std::uint64_t* all = cx.view(arr, count);
  const std::uint64_t* one = cx.view(arr + at);
  return one == all + at ? *one : ~std::uint64_t{0};
}

std::uint64_t view_then_add(ferry::context& cx, ferry::ref<std::uint64_t> cell, std::uint64_t x) {
  const std::uint64_t seen = *cx.view(cell);
  std::uint64_t* p = cx.local(cell);
  *p = seen + x;
  return *p;
}

std::uint64_t write_then_stream(ferry::context& cx, ferry::ref<std::uint64_t> table, std::uint64_t n,
                                std::uint64_t chunk) {
  constexpr std::uint64_t kMax = 16384;
  std::uint64_t buf[kMax];
  if (chunk == 0 || chunk > kMax) return 0;
  std::uint64_t* rows = cx.local(table, n);
  std::uint64_t seen = 0;
  for (std::uint64_t at = 0; at < n; at += chunk) {
    rows[at] = 0xfeed000000000000ull + at;
    cx.read(table + at, buf, n - at < chunk ? n - at : chunk);
    seen += buf[0] == 0xfeed000000000000ull + at;
  }
  return seen;
}

std::uint64_t not_mobile(ferry::context&, ferry::ref<std::uint64_t>) { return 0; }

std::uint64_t chase_locally(const std::uint64_t* next, std::uint64_t index, std::uint32_t depth) {
  for (; depth > 0; --depth) index = next[index];
  return index;
}

}  // namespace rt_test
