// Sample: near-storage filter + aggregate. A table of 64-bit rows (sensor id,
// reading) lives on a storage node; the query "count, sum, min and max of the
// readings of sensors lo..hi" runs two ways in the same run:
//   ship the code  near_storage_scan (table_scan.cpp) runs on the storage
//                  node, streaming the table from its device with cx.read
//                  (O_DIRECT), and only the 48-byte summary comes back
//   pull the table the caller fetches the rows (4 MiB at a time, into one
//                  buffer) and runs the same loop over them
// Both answers must equal the one computed here from the generator
// (row_at), without touching the cluster; exit 1 otherwise.
//
//     ferry launch -n 1 --storage 1 --storage-size 512MiB -- ferry-near-storage --mib 256
//
// Without root (no loop device for a storage node) it runs as well on a host
// node (`ferry launch -n 1 -- ferry-near-storage`): the scan then reads memory.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <span>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <ferry/runtime.hpp>

#include "table_scan.hpp"

using clock_type = std::chrono::steady_clock;
using near_storage::summary;

namespace {

double ms_since(clock_type::time_point t0) {
  return std::chrono::duration<double, std::milli>(clock_type::now() - t0).count();
}

const char* kind_name(std::uint32_t kind) {
  return kind == FERRY_NODE_STORAGE ? "storage" : kind == FERRY_NODE_DPU ? "dpu" : "host";
}

// The answer from the generator alone: what the table holds, computed here.
summary expected(std::uint64_t n, const near_storage::query& q) {
  std::vector<std::uint64_t> chunk(1 << 15);
  summary s;
  for (std::uint64_t at = 0; at < n; at += chunk.size()) {
    const std::uint64_t count = std::min<std::uint64_t>(chunk.size(), n - at);
    for (std::uint64_t i = 0; i < count; ++i) chunk[i] = near_storage::row_at(at + i);
    near_storage::accumulate(s, chunk.data(), count, q);
  }
  return s;
}

// Pull the table to the caller, 4 MiB per get into one buffer, and scan it here.
summary pull_and_scan(ferry::runtime& rt, ferry::ref<std::uint64_t> table, std::uint64_t n,
                      const near_storage::query& q) {
  std::vector<std::uint64_t> rows(std::min<std::uint64_t>(1 << 19, n));
  summary s;
  for (std::uint64_t at = 0; at < n; at += rows.size()) {
    const std::span part(rows.data(), std::min<std::uint64_t>(rows.size(), n - at));
    rt.objects().get(table + at, part);
    near_storage::accumulate(s, part.data(), part.size(), q);
  }
  return s;
}

void print_row(std::string_view how, const summary& s, std::string_view ms, const summary& want) {
  fmt::print("{:<16} {:>10} {:>14} {:>6} {:>10} {:>10}  {}\n", how, s.matched, s.sum, s.min, s.max, ms,
             s == want ? "ok" : "WRONG");
}

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t mib = 64;
  std::vector<std::uint64_t> sensors{0, 655};
  CLI::App app{"near-storage filter + aggregate: ship the scan to the node holding the table vs pull the table "
               "(run under `ferry launch -n 1 --storage 1`)"};
  app.add_option("--mib", mib, "Table size, MiB")->check(CLI::Range(std::uint64_t{1}, std::uint64_t{4096}))
      ->capture_default_str();
  app.add_option("--sensors", sensors, "The filter: sensor ids LO,HI (0..65535)")
      ->delimiter(',')
      ->expected(2)
      ->check(CLI::Range(std::uint64_t{0}, std::uint64_t{0xffff}));
  CLI11_PARSE(app, argc, argv);
  const near_storage::query q{std::min(sensors[0], sensors[1]), std::max(sensors[0], sensors[1])};
  try {
    ferry::runtime rt(argc, argv);
    const auto nodes = rt.nodes();
    if (nodes.empty()) throw ferry::error(ferry::make_error(ferry::errc::not_found, "no node in the cluster"));
    // The storage node if there is one, else the last node.
    auto at = std::find_if(nodes.begin(), nodes.end(), [](const auto& n) { return n.kind == FERRY_NODE_STORAGE; });
    const auto& node = at != nodes.end() ? *at : nodes.back();
    const std::uint64_t n = mib << 17;
    fmt::print("table: {} MiB ({} rows) on node {} ({}, over {})\n", mib, n, node.id, kind_name(node.kind),
               node.transport);

    ferry::call_options long_call;
    long_call.deadline = std::chrono::minutes(10);
    auto table = rt.objects().create<std::uint64_t>(n, ferry::on_node(node.id));
    auto t0 = clock_type::now();
    rt.invoke_with(long_call, &near_storage_fill, table, n).get();
    fmt::print("  filled where it lives: {:.1f} ms\n", ms_since(t0));
    // The scan is one long call: have its code compiled optimized before it
    // (a first call's code runs at the JIT's fast tier, docs/jit.md "Tiers").
    t0 = clock_type::now();
    ferry::preload_options optimized;
    optimized.optimized = true;
    rt.preload(&near_storage_scan, ferry::on_node(node.id), optimized).get();
    fmt::print("  scan code shipped and JIT-compiled (optimized) on node {}: {:.1f} ms\n", node.id, ms_since(t0));
    const summary want = expected(n, q);

    fmt::print("query: count, sum, min, max of the readings WHERE sensor BETWEEN {} AND {}\n", q.sensor_lo,
               q.sensor_hi);
    fmt::print("{:<16} {:>10} {:>14} {:>6} {:>10} {:>10}\n", "", "matched", "sum", "min", "max", "ms");
    t0 = clock_type::now();
    const summary shipped = rt.invoke_with(long_call, &near_storage_scan, table, n, q).get();
    const double ship_ms = ms_since(t0);
    print_row("ship the scan", shipped, fmt::format("{:.1f}", ship_ms), want);
    t0 = clock_type::now();
    const summary pulled = pull_and_scan(rt, table, n, q);
    const double pull_ms = ms_since(t0);
    print_row("pull the table", pulled, fmt::format("{:.1f}", pull_ms), want);
    print_row("expected", want, "-", want);
    rt.objects().remove(table);
    fmt::print("moved to the caller: {} bytes (ship) vs {} MiB (pull); pull / ship time: {:.2f}x\n",
               sizeof(summary), mib, pull_ms / ship_ms);
    const bool ok = shipped == want && pulled == want && want.rows == n;
    fmt::print("{}\n", ok ? "ok: the shipped scan and the pulled table give the expected answer"
                          : "MISMATCH");
    return ok ? 0 : 1;
  } catch (const ferry::error& e) {
    fmt::print(stderr, "near_storage: {}\n", e.what());
    return 1;
  }
}
