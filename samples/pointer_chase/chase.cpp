#include "chase.hpp"

#include <random>

#include <ferry/runtime.hpp>

[[ferry::mobile]] std::uint64_t chase(ferry::context& cx, ferry::ref<chase_shard> here, std::uint64_t index,
                                      std::uint32_t depth) {
  const chase_shard* h = cx.view(here);
  const std::uint64_t* slots = cx.view(ferry::ref<std::uint64_t>{here.id, sizeof(chase_shard)}, h->slots);
  for (; depth > 0; --depth) {
    const std::uint32_t owner = static_cast<std::uint32_t>(index % h->shards);
    if (owner != h->self) return cx.forward(&chase, h->all[owner], index, depth);
    index = slots[index / h->shards];
  }
  return index;
}

namespace chase_table {

std::vector<std::uint64_t> make(unsigned log2_entries, std::uint64_t seed) {
  const std::uint64_t n = std::uint64_t{1} << log2_entries;
  std::vector<std::uint64_t> table(n);
  for (std::uint64_t i = 0; i < n; ++i) table[i] = i;
  std::mt19937_64 rng(seed);
  for (std::uint64_t i = n - 1; i > 0; --i) std::swap(table[i], table[rng() % (i + 1)]);  // Fisher-Yates
  return table;
}

std::vector<std::uint64_t> shard(const std::vector<std::uint64_t>& table, std::uint32_t s, std::uint32_t shards) {
  std::vector<std::uint64_t> slots;
  slots.reserve(table.size() / shards + 1);
  for (std::uint64_t i = s; i < table.size(); i += shards) slots.push_back(table[i]);
  return slots;
}

std::uint64_t follow(const std::vector<std::uint64_t>& table, std::uint64_t start, std::uint32_t depth) {
  for (; depth > 0; --depth) start = table[start];
  return start;
}

}  // namespace chase_table

chase_shard place_shards(ferry::runtime& rt, const std::vector<std::uint64_t>& table,
                         const std::vector<std::uint32_t>& nodes,
                         const std::function<void(std::uint32_t, std::size_t)>& loading) {
  const auto shards = static_cast<std::uint32_t>(nodes.size());
  chase_shard h{shards, 0, 0, {}};
  std::vector<std::vector<std::uint64_t>> slots;
  for (std::uint32_t s = 0; s < shards; ++s) {
    slots.push_back(chase_table::shard(table, s, shards));
    h.all[s] = {rt.objects().create_bytes(sizeof(chase_shard) + slots[s].size() * 8, nodes[s]), 0};
  }
  for (std::uint32_t s = 0; s < shards; ++s) {
    if (loading) loading(s, slots[s].size());
    chase_shard mine = h;
    mine.self = s;
    mine.slots = slots[s].size();
    rt.objects().put(h.all[s], std::span<const chase_shard>(&mine, 1));
    rt.objects().put(ferry::ref<std::uint64_t>{h.all[s].id, sizeof(chase_shard)},
                     std::span<const std::uint64_t>(slots[s]));
  }
  return h;
}
