// The client of the device tests (test_dpu.sh): on every node of the cluster
// it was launched into, runs the same mobile function over the same data and
// checks the answer against a local computation; prints each node's profile
// and where the call ran, one line per node:
//   node 1 dpu ran-on aarch64-unknown-linux-gnu cortex-a72 sum ok
// Exit status 0 only if every answer was right and every node reported the
// triple and CPU rt.nodes() announced for it.
//
//   device_client memory-cap MIB COPIES
// then, on each DPU node, runs a call that keeps COPIES cx.fetch copies of a
// MIB-MiB object at once, more than the node may hold: the call must fail
// with out_of_memory, and the same node (same incarnation, not restarted)
// must answer the next call right:
//   node 1 dpu memory cap: out_of_memory, still serving (incarnation 1)
//
// Every node also runs a helper that writes 17 to 64 bytes into its 16-byte
// local array (tests/runtime/hostile.hpp), on the DPU's aarch64 code as on
// x86-64 (docs/security.md). Through the array's address read back from
// memory (overrun_through), stack canaries must end the call before the
// overrun returns; in place (overrun_local), each write past the array must
// end the call at that write. One line per node for each, a character per
// byte count (. the right answer, c the canary, a the array's end, b
// another bounds check, ? another end):
//   node 1 dpu overrun: ........ccccccccbbbb... canary ok
//   node 1 dpu overrun in place: aaaa... array ok
//
// And a write through what cx.view handed out (a const_cast) into an object
// in the node's memory must end the call with memory_fault (the bounds
// checks' write check, on aarch64 code as on x86-64), the object unchanged:
//   node 1 dpu write through a view: memory_fault, object unchanged ok
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <string>
#include <vector>

#include <ferry/runtime.hpp>

#include "hostile.hpp"

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

/// Writes `value` through the read-only pointer cx.view hands out.
[[ferry::mobile]] std::uint64_t write_viewed(ferry::context& cx, ferry::ref<std::uint64_t> cell, std::uint64_t value) {
  auto* p = const_cast<volatile std::uint64_t*>(cx.view(cell));
  *p = value;
  return *p;
}

/// Holds `copies` cx.fetch copies of `bytes` bytes of `data` at once (each
/// copy lives until the call ends) and reads a byte of each.
[[ferry::mobile]] std::uint64_t hold_copies(ferry::context& cx, ferry::ref<std::uint8_t> data, std::uint64_t bytes,
                                            std::uint32_t copies) {
  std::uint64_t h = 0;
  for (std::uint32_t i = 0; i < copies; ++i) h += cx.fetch(data, bytes)[bytes - 1] + 1;
  return h;
}

namespace {

/// The memory-cap check on one DPU node; prints its line, true if it held.
bool memory_cap_holds(ferry::runtime& rt, const ferry::node_info& node, std::uint64_t mib, std::uint32_t copies,
                      std::uint64_t expected_sum, const std::vector<std::uint64_t>& values) {
  const std::uint64_t bytes = mib << 20;
  auto big = rt.objects().create<std::uint8_t>(bytes, ferry::on_node(node.id));
  std::string outcome = "no error";
  try {
    const std::uint64_t got = rt.invoke(&hold_copies, big, bytes, copies).get();
    outcome = "returned " + std::to_string(got);
  } catch (const ferry::error& e) {
    outcome = std::string(ferry::to_string(e.code()));
    std::fprintf(stderr, "node %u: %s\n", node.id, e.what());
  }
  rt.objects().remove(big);
  // Still the same process, and it answers.
  auto data = rt.objects().create<std::uint64_t>(values.size(), ferry::on_node(node.id));
  rt.objects().put(data, std::span<const std::uint64_t>(values));
  const auto after = rt.invoke(&sum_here, data, std::uint64_t{values.size()}).get();
  rt.objects().remove(data);
  std::uint32_t incarnation = 0;
  for (const auto& n : rt.nodes())
    if (n.id == node.id) incarnation = n.incarnation;
  const bool serving = after.sum == expected_sum && incarnation == node.incarnation;
  std::printf("node %u dpu memory cap: %s, %s (incarnation %u)\n", node.id, outcome.c_str(),
              serving ? "still serving" : "NOT SERVING", incarnation);
  return outcome == "out_of_memory" && serving;
}

/// `fn`'s outcomes on one node, for 17 to 64 bytes written into its 16-byte array.
template <class Fn>
std::string overrun_outcomes(ferry::runtime& rt, Fn* fn, ferry::ref<std::uint64_t> cell) {
  std::string outcomes;
  for (std::uint64_t n = 17; n <= 64; ++n) {
    auto r = rt.invoke(fn, cell, n).try_get();
    if (r.ok()) outcomes += '.';
    else if (r.code() != ferry::errc::memory_fault) outcomes += '?';
    else if (r.error().describe().find("overwrote its stack frame") != std::string::npos) outcomes += 'c';
    else if (r.error().describe().find("outside the local array or global of 16 bytes") != std::string::npos) outcomes += 'a';
    else outcomes += 'b';
  }
  return outcomes;
}

/// The overrun checks on one node; prints their lines, true if both held:
/// through a pointer, some overrun ended at the canary and none past the
/// first one caught returned; in place, every one ended at the array's end.
bool overruns_caught(ferry::runtime& rt, const ferry::node_info& node, const char* kind) {
  auto cell = rt.objects().create<std::uint64_t>(1, ferry::on_node(node.id));
  rt.objects().put(cell, std::span<const std::uint64_t>(std::vector<std::uint64_t>{1000}));
  const std::string through = overrun_outcomes(rt, &rt_test::overrun_through, cell);
  const std::string in_place = overrun_outcomes(rt, &rt_test::overrun_local, cell);
  const bool right = rt.invoke(&rt_test::overrun_through, cell, std::uint64_t{16}).get() == 1000 + 0x41 + 0x50 &&
                     rt.invoke(&rt_test::overrun_local, cell, std::uint64_t{16}).get() == 1000 + 0x41 + 0x50;
  rt.objects().remove(cell);
  const auto caught = through.find_first_not_of('.');
  const bool canary = right && through.find('c') != std::string::npos && caught != std::string::npos &&
                      through.find_first_of(".?", caught) == std::string::npos;
  const bool array = right && in_place == std::string(48, 'a');
  std::printf("node %u %s overrun: %s canary %s\n", node.id, kind, through.c_str(), canary ? "ok" : "FAILED");
  std::printf("node %u %s overrun in place: %s array %s\n", node.id, kind, in_place.c_str(), array ? "ok" : "FAILED");
  return canary && array;
}

/// The write-through-a-view check on one node; prints its line, true if
/// the call ended with memory_fault for that reason and the object kept its
/// value.
bool view_write_refused(ferry::runtime& rt, const ferry::node_info& node, const char* kind) {
  auto cell = rt.objects().create<std::uint64_t>(1, ferry::on_node(node.id));
  rt.objects().put(cell, std::span<const std::uint64_t>(std::vector<std::uint64_t>{1000}));
  auto r = rt.invoke(&write_viewed, cell, std::uint64_t{99}).try_get();
  const std::string outcome = r.ok() ? "returned " + std::to_string(*r) : std::string(ferry::to_string(r.code()));
  if (!r.ok()) std::fprintf(stderr, "node %u: %s\n", node.id, r.error().describe().c_str());
  const bool refused = !r.ok() && r.code() == ferry::errc::memory_fault &&
                       r.error().describe().find("may only read") != std::string::npos;
  const bool unchanged = rt.objects().get(cell, 1)[0] == 1000;
  rt.objects().remove(cell);
  std::printf("node %u %s write through a view: %s, object %s %s\n", node.id, kind, outcome.c_str(),
              unchanged ? "unchanged" : "CHANGED", refused && unchanged ? "ok" : "FAILED");
  return refused && unchanged;
}

}  // namespace

int main(int argc, char** argv) {
  const char* kinds[] = {"host", "dpu", "storage"};
  int failures = 0;
  const bool memory_cap = argc == 4 && std::strcmp(argv[1], "memory-cap") == 0;
  if (argc != 1 && !memory_cap) {
    std::fprintf(stderr, "usage: device_client [memory-cap MIB COPIES]\n");
    return 2;
  }
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
      if (!overruns_caught(rt, node, node.kind < 3 ? kinds[node.kind] : "?")) ++failures;
      if (!view_write_refused(rt, node, node.kind < 3 ? kinds[node.kind] : "?")) ++failures;
      if (memory_cap && node.kind == FERRY_NODE_DPU &&
          !memory_cap_holds(rt, node, std::strtoull(argv[2], nullptr, 10),
                            static_cast<std::uint32_t>(std::strtoul(argv[3], nullptr, 10)), expected, values))
        ++failures;
    }
  } catch (const ferry::error& e) {
    std::fprintf(stderr, "device_client: %s\n", e.what());
    return 1;
  }
  return failures == 0 ? 0 : 1;
}
