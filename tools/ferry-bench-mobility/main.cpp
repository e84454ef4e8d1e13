// `ferry bench mobility` (this program; `ferry bench mobility` runs it): what
// moving code along pointers, moving objects, and stale owner caches cost, in
// one run on three local nodes per directory scheme.
//
//   list walk          baseline: the caller walks, one call per element
//                                (the element's value and the resolved next ref)
//                      ferry:    one call that resolves ptrs and forwards itself
//   move an object     baseline: the caller copies it (get, create on the
//                                destination, put, remove)
//                      ferry:    rt.objects().migrate(ref, on_node(j))
//   first call there   baseline: a call on the caller's copy, just made
//                      ferry:    a call on the moved object as migrate returns
//                                (it waits while the destination makes the
//                                object live: migrate answers before that)
//   call after a move  baseline: a call with a fresh owner cache
//   (home, e2e)        ferry:    the first call of a client whose cache still
//                                names the former owner (another client moved it)
//
// Round trips per call (runtime_stats) are printed with the table.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <ferry/runtime.hpp>

#include "common/bench_report.hpp"
#include "common/local_cluster.hpp"
#include "kernels.hpp"

namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;
using ferry::bench::median;
using ferry::bench::row;

namespace {

struct options {
  std::string tls = "shm";
  bool json = false;
  int repeat = 101;            // samples per latency case (median reported)
  std::uint64_t elements = 64;  // list length
  std::uint64_t per_object = 4;
  std::uint64_t move_bytes = std::uint64_t{1} << 20;
  bool persistent = false;  // nodes keep their objects in directory stores
};

constexpr std::uint32_t kNodes = 3;

void progress(const options& o, std::string_view what) {
  if (!o.json) fmt::print(stderr, "bench mobility: {}\n", what);
}

void check(std::uint64_t got, std::uint64_t want, std::string_view what) {
  if (got != want)
    throw ferry::error(ferry::make_error(ferry::errc::corrupt, fmt::format("{} returned {}, expected {}", what, got, want)));
}

template <class F>
double time_us(F&& f) {
  const auto t0 = clock_type::now();
  f();
  return std::chrono::duration<double, std::micro>(clock_type::now() - t0).count();
}

using ferry::bench::local_cluster;

std::vector<row> list_walk(const options& o, ferry::runtime& rt) {
  progress(o, fmt::format("a list of {} elements, {} per object, objects round-robin on {} nodes", o.elements,
                          o.per_object, kNodes));
  const std::uint64_t objects = (o.elements + o.per_object - 1) / o.per_object;
  std::vector<ferry::ref<bench_list_node>> obj;
  for (std::uint64_t k = 0; k < objects; ++k)
    obj.push_back(rt.objects().create<bench_list_node>(o.per_object, ferry::on_node(k % kNodes)));
  auto at = [&](std::uint64_t i) { return obj[i / o.per_object] + (i % o.per_object); };
  for (std::uint64_t i = 0; i < o.elements; ++i) {
    bench_list_node n;
    n.value = i + 1;
    rt.objects().put(at(i), std::span<const bench_list_node>(&n, 1));
    rt.invoke(&bench_link, at(i), i + 1 < o.elements ? at(i + 1) : ferry::ref<bench_list_node>{}).get();
  }
  const std::uint64_t want = o.elements * (o.elements + 1) / 2;
  std::vector<double> rpc, forwarded;
  for (int r = -1; r < o.repeat; ++r) {  // r = -1 warms up
    const double t_rpc = time_us([&] {
      std::uint64_t sum = 0;
      for (ferry::ref<bench_list_node> p = at(0); !p.is_nil();) {
        const bench_step s = rt.invoke(&bench_list_step, p).get();
        sum += s.value;
        p = s.next;
      }
      check(sum, want, "the caller's walk");
    });
    const double t_fwd = time_us([&] { check(rt.invoke(&bench_list_sum, at(0), 0).get(), want, "bench_list_sum"); });
    if (r >= 0) {
      rpc.push_back(t_rpc);
      forwarded.push_back(t_fwd);
    }
  }
  return {{fmt::format("list walk, {} elements on {} nodes ({})", o.elements, kNodes, o.tls), median(rpc),
           median(forwarded), "us", ferry::bench::paired_ratio_range(rpc, forwarded)}};
}

std::vector<row> move_object(const options& o, ferry::runtime& rt) {
  progress(o, fmt::format("moving a {} B object round the nodes", o.move_bytes));
  const std::uint64_t words = o.move_bytes / 8;
  std::vector<std::uint64_t> data(words);
  for (std::uint64_t i = 0; i < words; ++i) data[i] = i * 7;
  auto moved = rt.objects().create<std::uint64_t>(words, ferry::on_node(0));
  rt.objects().put(moved, std::span<const std::uint64_t>(data));
  std::vector<double> by_hand, migrate, call_on_copy, call_after_move;
  const auto read_last = [&](ferry::ref<std::uint64_t> at, const char* what) {
    return time_us([&] { check(rt.invoke(&bench_read, at + (words - 1)).get(), data[words - 1], what); });
  };
  const int reps = std::max(5, o.repeat / 5);
  for (int r = 0; r < reps; ++r) {
    const std::uint32_t to = static_cast<std::uint32_t>(r + 1) % kNodes;
    double called = 0;  // the call on the copy, not part of copying it
    by_hand.push_back((time_us([&] {
                         auto copy = rt.objects().create<std::uint64_t>(words, ferry::on_node(to));
                         rt.objects().put(copy, std::span<const std::uint64_t>(rt.objects().get(moved, words)));
                         called = read_last(copy, "bench_read on a copy");
                         rt.objects().remove(copy);
                       }) -
                       called) /
                      1000);
    call_on_copy.push_back(called);
    migrate.push_back(time_us([&] { rt.objects().migrate(moved, ferry::on_node(to)); }) / 1000);
    call_after_move.push_back(read_last(moved, "bench_read after a move"));
  }
  return {{fmt::format("move a {} KiB object ({})", o.move_bytes >> 10, o.tls), median(by_hand), median(migrate),
           "ms", ferry::bench::paired_ratio_range(by_hand, migrate)},
          {fmt::format("first call there: on a copy vs after a move ({} KiB, {})", o.move_bytes >> 10, o.tls),
           median(call_on_copy), median(call_after_move), "us",
           ferry::bench::paired_ratio_range(call_on_copy, call_after_move)}};
}

struct stale_figures {
  row latency;
  double warm_trips, stale_trips;
};

stale_figures stale_calls(const options& o, const local_cluster& cl, const std::string& scheme) {
  progress(o, fmt::format("calls after a move, {} directory", scheme));
  auto mover = cl.client();
  auto caller = cl.client();
  const auto cell = mover->objects().create<std::uint64_t>(1, ferry::on_node(0));
  const std::uint64_t v[] = {42};
  mover->objects().put(cell, std::span<const std::uint64_t>(v));
  check(caller->invoke(&bench_read, cell).get(), 42, "bench_read");
  std::vector<double> warm, stale;
  ferry::runtime_stats warm_s{}, stale_s{};
  auto delta = [](ferry::runtime_stats a, ferry::runtime_stats b) {
    return ferry::runtime_stats{b.requests - a.requests, b.redirects - a.redirects, b.lookups - a.lookups};
  };
  auto add = [](ferry::runtime_stats& acc, ferry::runtime_stats d) {
    acc.requests += d.requests, acc.redirects += d.redirects, acc.lookups += d.lookups;
  };
  for (int r = 0; r < o.repeat; ++r) {
    mover->objects().migrate(cell, ferry::on_node(static_cast<std::uint32_t>(r + 1) % kNodes));
    auto s0 = caller->stats();
    stale.push_back(time_us([&] { check(caller->invoke(&bench_read, cell).get(), 42, "bench_read"); }));
    // The owner hint travels apart from the answer: let it land (without
    // sleeping: idle nodes would block and the next call would time a wakeup).
    const auto until = clock_type::now() + std::chrono::seconds(1);
    while (caller->stats().redirects == s0.redirects && clock_type::now() < until) std::this_thread::yield();
    auto s1 = caller->stats();
    warm.push_back(time_us([&] { check(caller->invoke(&bench_read, cell).get(), 42, "bench_read"); }));
    auto s2 = caller->stats();
    add(stale_s, delta(s0, s1));
    add(warm_s, delta(s1, s2));
  }
  auto trips = [](const ferry::runtime_stats& s) {
    return 1.0 + static_cast<double>(s.redirects + s.lookups) / static_cast<double>(s.requests);
  };
  return {{fmt::format("call after a move: fresh vs stale cache ({}, {})", scheme, o.tls), median(warm), median(stale),
           "us", ferry::bench::paired_ratio_range(warm, stale)},
          trips(warm_s), trips(stale_s)};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ferry bench mobility: a list walked by one forwarded call vs one call per element, an object\n"
               "moved by migrate vs copied by the caller, and a call after a move with a stale owner cache vs a\n"
               "fresh one (home and e2e directories), on three local nodes started for the run."};
  options o;
  app.name("ferry bench mobility");
  app.add_option("--tls", o.tls, "UCX transport between the processes")->check(CLI::IsMember({"shm", "tcp"}));
  app.add_flag("--json", o.json, "Print JSON: the parameters and a list of {name, baseline, ferry, ratio, unit}");
  app.add_option("--repeat", o.repeat, "Samples per latency case (the median is reported)")->check(CLI::Range(1, 100000));
  app.add_option("--elements", o.elements, "List length")->check(CLI::Range(2, 100000));
  app.add_option("--move-bytes", o.move_bytes, "Size of the moved object (up to 1 GiB: an image moves in parts of any size)")
      ->check(CLI::Range(std::uint64_t{8}, std::uint64_t{1} << 30));
  app.add_flag("--persistent", o.persistent,
               "Nodes keep their objects in directory stores (files in the run's temporary directory, synced): a "
               "move writes the image to the destination's disk and commits by renaming its file");
  for (auto* opt : app.get_options()) opt->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  ::setenv("UCX_NET_DEVICES", "lo", 0);  // one host: loopback only unless told otherwise
  try {
    std::vector<row> rows;
    std::vector<std::pair<std::string, std::pair<double, double>>> trips;
    for (const std::string scheme : {"home", "e2e"}) {
      local_cluster cl(kNodes, o.tls, scheme, {}, o.persistent);
      if (scheme == "home") {
        auto rt = cl.client();
        for (auto& r : list_walk(o, *rt)) rows.push_back(r);
        for (auto& r : move_object(o, *rt)) rows.push_back(r);
      }
      auto s = stale_calls(o, cl, scheme);
      rows.push_back(s.latency);
      trips.push_back({scheme, {s.warm_trips, s.stale_trips}});
    }
    ferry::bench::print_rows(rows, o.json, "baseline",
                             ferry::bench::parameters()
                                 .add("nodes", kNodes)
                                 .add("tls", o.tls)
                                 .add("repeat", o.repeat)
                                 .add("elements", o.elements)
                                 .add("per_object", o.per_object)
                                 .add("move_bytes", o.move_bytes)
                                 .add("persistent", o.persistent));
    if (!o.json)
      for (const auto& [scheme, t] : trips)
        fmt::print("round trips per call ({}): fresh cache {:.2f}, stale cache {:.2f}\n", scheme, t.first, t.second);
  } catch (const std::exception& e) {
    fmt::print(stderr, "ferry bench mobility: {}\n", e.what());
    return 1;
  }
  return 0;
}
