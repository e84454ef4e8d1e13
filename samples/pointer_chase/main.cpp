// Sample: code moves to data. A random permutation ("next" table) is split
// across every node of the cluster; a mobile function walks it, forwarding
// itself to whichever node holds the next entry, and the final index goes
// straight back to this program. Checked against the same walk done locally.
//
//     ferry launch -n 3 -- ferry-demo
#include <chrono>
#include <cstdio>
#include <numeric>
#include <random>
#include <vector>

#include <ferry/ferry.hpp>
#include <ferry/runtime.hpp>

namespace {

constexpr std::uint32_t kMaxShards = 16;

/// Every shard starts with the references of all shards, then its entries:
/// entry i of the table lives in shard i % shards, slot i / shards.
struct shard_header {
  std::uint32_t shards;
  ferry::ref<shard_header> all[kMaxShards];
};

}  // namespace

[[ferry::mobile]] std::uint64_t walk(ferry::context& cx, ferry::ref<shard_header> here, std::uint64_t index,
                                     std::uint32_t steps) {
  const shard_header* h = cx.local(here);
  for (; steps > 0; --steps) {
    const ferry::ref<shard_header> owner = h->all[index % h->shards];
    if (owner != here) return cx.forward(&walk, owner, index, steps);
    index = *cx.local(ferry::ref<std::uint64_t>{here.id, sizeof(shard_header) + index / h->shards * 8});
  }
  return index;
}

int main(int argc, char** argv) {
  try {
    ferry::runtime rt(argc, argv);
    const auto nodes = rt.nodes();
    const auto shards = static_cast<std::uint32_t>(std::min<std::size_t>(nodes.size(), kMaxShards));
    std::printf("cluster: %zu nodes (%s, over %s)\n", nodes.size(), nodes.empty() ? "?" : nodes[0].triple.c_str(),
                nodes.empty() ? "?" : nodes[0].transport.c_str());

    constexpr std::uint64_t kEntries = 30000;
    std::vector<std::uint64_t> next(kEntries);
    std::iota(next.begin(), next.end(), 0);
    std::shuffle(next.begin(), next.end(), std::mt19937_64(2026));

    shard_header h{shards, {}};
    for (std::uint32_t s = 0; s < shards; ++s)
      h.all[s] = rt.objects().create<shard_header>(2 + kEntries / shards * 8 / sizeof(shard_header), ferry::on_node(s));
    for (std::uint32_t s = 0; s < shards; ++s) {
      std::vector<std::uint64_t> slots;
      for (std::uint64_t i = s; i < kEntries; i += shards) slots.push_back(next[i]);
      rt.objects().put(h.all[s], std::span<const shard_header>(&h, 1));
      rt.objects().put(ferry::ref<std::uint64_t>{h.all[s].id, sizeof(shard_header)}, std::span<const std::uint64_t>(slots));
      std::printf("  shard %u on node %u: %zu entries\n", s, s, slots.size());
    }

    bool ok = true;
    for (std::uint32_t steps : {1u, 16u, 64u, 1024u, 4096u}) {
      std::uint64_t expect = 7;
      for (std::uint32_t i = 0; i < steps; ++i) expect = next[expect];
      const auto t0 = std::chrono::steady_clock::now();
      const std::uint64_t got = rt.invoke(&walk, h.all[0], std::uint64_t{7}, steps).get();
      const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
      std::printf("walk %5u steps from entry 7: %6llu (expected %6llu) %s  %9.1f us\n", steps,
                  static_cast<unsigned long long>(got), static_cast<unsigned long long>(expect),
                  got == expect ? "ok" : "WRONG", us);
      ok = ok && got == expect;
    }
    std::puts("(the first walk includes shipping the code and JIT-compiling it on the nodes)");
    std::puts(ok ? "ok: the walk forwarded itself across the nodes and every answer matches"
                 : "MISMATCH");
    return ok ? 0 : 1;
  } catch (const ferry::error& e) {
    std::fprintf(stderr, "ferry-demo: %s\n", e.what());
    return 1;
  }
}
