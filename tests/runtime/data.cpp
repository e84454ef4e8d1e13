#include <numeric>
#include <random>

#include "mobile.hpp"

namespace rt_test {

ferry::ref<std::uint64_t> cell_on(ferry::runtime& rt, std::uint32_t node, std::uint64_t value) {
  auto c = rt.objects().create<std::uint64_t>(1, ferry::on_node(node));
  const std::uint64_t v[] = {value};
  rt.objects().put(c, std::span<const std::uint64_t>(v));
  return c;
}

chase_table make_chase_table(ferry::runtime& rt, std::uint64_t entries, std::uint64_t seed) {
  chase_table t;
  t.next.resize(entries);
  std::iota(t.next.begin(), t.next.end(), 0);
  std::shuffle(t.next.begin(), t.next.end(), std::mt19937_64(seed));
  const std::uint64_t slots_bytes = (entries / kShards + 1) * sizeof(std::uint64_t);
  shard_header h;
  for (std::uint32_t s = 0; s < kShards; ++s) {
    t.shards[s] = rt.objects().create<shard_header>(1 + slots_bytes / sizeof(shard_header) + 1, ferry::on_node(s));
    h.shards[s] = t.shards[s];
  }
  for (std::uint32_t s = 0; s < kShards; ++s) {
    std::vector<std::uint64_t> slots;
    for (std::uint64_t i = s; i < entries; i += kShards) slots.push_back(t.next[i]);
    rt.objects().put(t.shards[s], std::span<const shard_header>(&h, 1));
    rt.objects().put(ferry::ref<std::uint64_t>{t.shards[s].id, sizeof(shard_header)}, std::span<const std::uint64_t>(slots));
  }
  return t;
}

}  // namespace rt_test
