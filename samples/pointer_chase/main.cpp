// Sample: code moves to data. A random permutation ("next" table) is split
// across every node of the cluster; the mobile function `chase` (chase.cpp)
// follows it, forwarding itself to whichever node holds the next entry, and
// the final index goes straight back to this program. Checked against the
// same chase followed locally.
//
//     ferry launch -n 3 -- ferry-demo
//     ferry launch -n 3 --dpu 1 --storage 1 -- ferry-demo   (a host node, an
//         aarch64 DPU under qemu, a storage node: docs/devices.md)
//
// ferry-pointer-chase runs the same chase against its bare-UCX baselines.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include <ferry/ferry.hpp>
#include <ferry/runtime.hpp>

#include "chase.hpp"

int main(int argc, char** argv) {
  try {
    ferry::runtime rt(argc, argv);
    const auto nodes = rt.nodes();
    const auto shards = static_cast<std::uint32_t>(std::min<std::size_t>(nodes.size(), chase_table::kMaxShards));
    std::printf("cluster: %zu nodes (%s, over %s)\n", nodes.size(), nodes.empty() ? "?" : nodes[0].triple.c_str(),
                nodes.empty() ? "?" : nodes[0].transport.c_str());

    const bool devices = std::any_of(nodes.begin(), nodes.end(), [](const auto& n) { return n.kind != FERRY_NODE_HOST; });
    const auto table = chase_table::make(15, 2026);
    std::vector<std::uint32_t> on;
    for (std::uint32_t s = 0; s < shards; ++s) on.push_back(s);
    const chase_shard h = place_shards(rt, table, on);
    for (std::uint32_t s = 0; s < shards; ++s) {
      std::printf("  shard %u on node %u: %zu entries", s, s, chase_table::shard(table, s, shards).size());
      if (devices) {  // which kind of node, and what it runs on
        static const char* const kinds[] = {"host", "dpu", "storage"};
        std::printf(" (%s, %s %s)", nodes[s].kind < 3 ? kinds[nodes[s].kind] : "?", nodes[s].triple.c_str(),
                    nodes[s].cpu.c_str());
      }
      std::printf("\n");
    }

    bool ok = true;
    const std::uint64_t start = 7;
    for (std::uint32_t steps : {1u, 16u, 64u, 1024u, 4096u}) {
      const std::uint64_t expect = chase_table::follow(table, start, steps);
      const auto t0 = std::chrono::steady_clock::now();
      const std::uint64_t got = rt.invoke(&chase, h.all[start % shards], start, steps).get();
      const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
      std::printf("chase %5u steps from entry %llu: %6llu (expected %6llu) %s  %9.1f us\n", steps,
                  static_cast<unsigned long long>(start), static_cast<unsigned long long>(got),
                  static_cast<unsigned long long>(expect), got == expect ? "ok" : "WRONG", us);
      ok = ok && got == expect;
    }
    std::puts("(the first chase includes shipping the code and JIT-compiling it on the nodes)");
    std::puts(ok ? "ok: the chase forwarded itself across the nodes and every answer matches" : "MISMATCH");
    return ok ? 0 : 1;
  } catch (const ferry::error& e) {
    std::fprintf(stderr, "ferry-demo: %s\n", e.what());
    return 1;
  }
}
