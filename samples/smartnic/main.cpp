// Sample: a key-value service whose hot path runs on a SmartNIC (the
// emulated DPU node: the aarch64 ferry under qemu, docs/devices.md). The
// same hash table lives on the DPU node and on a host node; the lookups
// (kv.cpp) are shipped to each and run there:
//   single lookups   one call per key: the cold first call (code shipped and
//                    JIT-compiled for that node's target), then the median
//                    of warm calls
//   batch code       its preload at the optimized tier (preload_options::optimized)
//   batches          one call per batch of keys: lookups per second
// Every answer (found or not, and the value) is checked against what the
// caller knows of the table without reading it (key_at, value_of), and
// every call must have run on the node it was meant for; exit 1 otherwise.
//
//     ferry launch -n 2 --dpu 1 -- ferry-smartnic
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <ferry/runtime.hpp>

#include "kv.hpp"

using clock_type = std::chrono::steady_clock;

namespace {

struct options {
  unsigned log2_slots = 16;     // table capacity; half of it filled
  int lookups = 200;            // single lookups per node
  std::uint64_t batch = 100000; // keys per batch call
  int batches = 5;              // batch calls per node
};

double us_since(clock_type::time_point t0) {
  return std::chrono::duration<double, std::micro>(clock_type::now() - t0).count();
}

struct figures {
  double cold_ms = 0, warm_us = 0, optimize_ms = 0, batch_rate = 0;
  int wrong = 0;
};

// Every figure for the table on `node`: keys 0..2*count-1, the first half present.
figures measure(ferry::runtime& rt, const ferry::node_info& node, const options& o) {
  const std::uint64_t capacity = std::uint64_t{1} << o.log2_slots, count = capacity / 2;
  figures f;
  auto table = rt.objects().create<smartnic::slot>(capacity, ferry::on_node(node.id));
  ferry::call_options long_call;
  long_call.deadline = std::chrono::minutes(5);
  if (rt.invoke_with(long_call, &kv_fill, table, capacity, count).get() != count) ++f.wrong;
  auto check = [&](std::uint64_t i, const smartnic::lookup& r) {
    const bool present = i < count;
    const std::uint64_t key = smartnic::key_at(i);
    if (r.found != present || (present && r.value != smartnic::value_of(key)) || r.node != node.id) ++f.wrong;
  };
  auto t0 = clock_type::now();
  check(0, rt.invoke_with(long_call, &kv_get, table, capacity, smartnic::key_at(0)).get());
  f.cold_ms = us_since(t0) / 1000;
  std::vector<double> us;
  for (int k = 0; k < o.lookups; ++k) {
    const std::uint64_t i = (static_cast<std::uint64_t>(k) * 7919) % (2 * count);  // hits and misses
    t0 = clock_type::now();
    const auto r = rt.invoke(&kv_get, table, capacity, smartnic::key_at(i)).get();
    us.push_back(us_since(t0));
    check(i, r);
  }
  std::nth_element(us.begin(), us.begin() + us.size() / 2, us.end());
  f.warm_us = us[us.size() / 2];
  // A batch is one long call: its code compiled optimized first, so the
  // rate is the optimized code's on both nodes (a first call's code runs at
  // the fast tier until 20 ms of runs make it hot: docs/jit.md, "Tiers").
  ferry::preload_options optimized;
  optimized.optimized = true;
  optimized.deadline = std::chrono::minutes(5);
  t0 = clock_type::now();
  rt.preload(&kv_get_batch, ferry::on_node(node.id), optimized).get();
  f.optimize_ms = us_since(t0) / 1000;
  t0 = clock_type::now();
  for (int b = 0; b < o.batches; ++b) {
    const std::uint64_t first = (static_cast<std::uint64_t>(b) * o.batch / 3) % (2 * count);
    const auto r = rt.invoke_with(long_call, &kv_get_batch, table, capacity, first, o.batch).get();
    smartnic::batch want;
    for (std::uint64_t i = first; i < first + o.batch; ++i)
      if (i < count) {
        ++want.hits;
        want.mix = smartnic::mix_in(want.mix, smartnic::value_of(smartnic::key_at(i)));
      }
    if (r.hits != want.hits || r.mix != want.mix || r.node != node.id) ++f.wrong;
  }
  f.batch_rate = o.batches * static_cast<double>(o.batch) / (us_since(t0) / 1e6);
  rt.objects().remove(table);
  return f;
}

const ferry::node_info* node_of_kind(const std::vector<ferry::node_info>& nodes, std::uint32_t kind) {
  for (const auto& n : nodes)
    if (n.kind == kind) return &n;
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  CLI::App app{"smartnic: a key-value service whose lookups run on the emulated DPU node vs the same on a host "
               "node (run under `ferry launch -n 2 --dpu 1`)"};
  app.add_option("--log2-slots", o.log2_slots, "Table capacity, log2 slots (half filled)")->check(CLI::Range(4, 24));
  app.add_option("--lookups", o.lookups, "Single lookups per node (median reported)")->check(CLI::Range(1, 1000000));
  app.add_option("--batch", o.batch, "Keys per batch call")->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 26));
  app.add_option("--batches", o.batches, "Batch calls per node")->check(CLI::Range(1, 100000));
  for (auto* opt : app.get_options()) opt->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    ferry::runtime rt(argc, argv);
    const auto nodes = rt.nodes();
    const auto* host = node_of_kind(nodes, FERRY_NODE_HOST);
    const auto* dpu = node_of_kind(nodes, FERRY_NODE_DPU);
    if (!host || !dpu)
      throw ferry::error(ferry::make_error(ferry::errc::not_found, "needs a host node and a DPU node "
                                                                   "(ferry launch -n 2 --dpu 1)"));
    fmt::print("table: 2^{} slots, {} keys; {} single lookups and {} batches of {} keys per node\n", o.log2_slots,
               (std::uint64_t{1} << o.log2_slots) / 2, o.lookups, o.batches, o.batch);
    figures f[2];
    for (int k = 0; k < 2; ++k) {
      const auto& n = k == 0 ? *host : *dpu;
      fmt::print("  node {} ({}, {} {}, over {}): ", n.id, k == 0 ? "host" : "dpu", n.triple, n.cpu, n.transport);
      std::fflush(stdout);
      f[k] = measure(rt, n, o);
      fmt::print("{} wrong answers\n", f[k].wrong);
    }
    fmt::print("{:<28} {:>12} {:>12} {:>10}\n", "", "host", "DPU", "DPU/host");
    auto row = [](std::string_view what, double h, double d) {
      fmt::print("{:<28} {:>12.1f} {:>12.1f} {:>9.2f}x\n", what, h, d, d / h);
    };
    row("cold lookup, ms", f[0].cold_ms, f[1].cold_ms);
    row("warm lookup, median us", f[0].warm_us, f[1].warm_us);
    row("batch code optimized, ms", f[0].optimize_ms, f[1].optimize_ms);
    row("batched lookups, 1000/s", f[0].batch_rate / 1000, f[1].batch_rate / 1000);
    const bool ok = f[0].wrong == 0 && f[1].wrong == 0;
    fmt::print("{}\n", ok ? "ok: every lookup on both nodes gave the expected answer, where it was sent"
                          : "WRONG answers");
    return ok ? 0 : 1;
  } catch (const ferry::error& e) {
    fmt::print(stderr, "smartnic: {}\n", e.what());
    return 1;
  }
}
