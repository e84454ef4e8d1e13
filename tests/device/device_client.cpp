// The client of the device tests (test_dpu.sh): on every node of the cluster
// it was launched into, runs the same mobile function over the same data and
// checks the answer against a local computation; prints each node's profile
// and where the call ran, one line per node:
//   node 1 dpu ran-on aarch64-unknown-linux-gnu cortex-a72 sum ok
// Exit status 0 only if every answer was right and every node reported the
// triple and CPU rt.nodes() announced for it.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <string>
#include <vector>

#include <ferry/runtime.hpp>

/// Where a call ran and what it computed: plain bytes, so it can travel.
/// (Not in an anonymous namespace: that would give sum_here internal
/// linkage, and the program's own address index could not name it.)
struct where_and_sum {
  std::uint64_t sum;
  std::uint32_t kind;
  char triple[64];
  char cpu[32];
};

[[ferry::mobile]] where_and_sum sum_here(ferry::context& cx, ferry::ref<std::uint64_t> data, std::uint64_t n) {
  const std::uint64_t* v = cx.local(data, n);
  where_and_sum out{};
  // A multiply-xor mix so a wrong element anywhere changes the answer.
  for (std::uint64_t i = 0; i < n; ++i) out.sum = (out.sum ^ v[i]) * 0x100000001b3ull;
  out.kind = cx.node_kind();
  const char* t = cx.node_triple();
  std::memcpy(out.triple, t, strnlen(t, sizeof out.triple - 1));
  const char* c = cx.node_cpu();
  std::memcpy(out.cpu, c, strnlen(c, sizeof out.cpu - 1));
  return out;
}

int main(int argc, char** argv) {
  const char* kinds[] = {"host", "dpu", "storage"};
  int failures = 0;
  try {
    ferry::runtime rt(argc, argv);
    constexpr std::uint64_t n = 4096;
    std::vector<std::uint64_t> values(n);
    for (std::uint64_t i = 0; i < n; ++i) values[i] = i * 2654435761u + 7;
    std::uint64_t expected = 0;
    for (auto v : values) expected = (expected ^ v) * 0x100000001b3ull;
    for (const auto& node : rt.nodes()) {
      auto data = rt.objects().create<std::uint64_t>(n, ferry::on_node(node.id));
      rt.objects().put(data, std::span<const std::uint64_t>(values));
      // The first call ships the code and JIT-compiles it there (qemu on a
      // DPU); later calls are warm. Figures for docs/devices.md, not checked.
      const auto t0 = std::chrono::steady_clock::now();
      const auto r = rt.invoke(&sum_here, data, n).get();
      const auto t1 = std::chrono::steady_clock::now();
      constexpr int kWarm = 20;
      for (int i = 0; i < kWarm; ++i) (void)rt.invoke(&sum_here, data, n).get();
      const auto t2 = std::chrono::steady_clock::now();
      const bool right = r.sum == expected && r.kind == node.kind && node.triple == r.triple && node.cpu == r.cpu;
      std::printf("node %u %s ran-on %s %s sum %s\n", node.id, node.kind < 3 ? kinds[node.kind] : "?", r.triple,
                  r.cpu, right ? "ok" : "WRONG");
      std::fprintf(stderr, "node %u: first call %.1f ms, warm call %.1f us (sum over %llu words)\n", node.id,
                   std::chrono::duration<double, std::milli>(t1 - t0).count(),
                   std::chrono::duration<double, std::micro>(t2 - t1).count() / kWarm,
                   static_cast<unsigned long long>(n));
      if (!right) {
        std::fprintf(stderr, "device_client: node %u announced %s %s kind %u, the call reported %s %s kind %u\n",
                     node.id, node.triple.c_str(), node.cpu.c_str(), node.kind, r.triple, r.cpu, r.kind);
        ++failures;
      }
      rt.objects().remove(data);
    }
  } catch (const ferry::error& e) {
    std::fprintf(stderr, "device_client: %s\n", e.what());
    return 1;
  }
  return failures == 0 ? 0 : 1;
}
