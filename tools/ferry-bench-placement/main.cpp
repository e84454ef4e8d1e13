// `ferry bench placement` (this program; `ferry bench placement` runs it):
// the seed's Alice/Bob/Carol case and its Figure 3, in one run.
//
//   Alice/Bob/Carol   Bob (node 0) holds a model partition and is saturated by
//                     another client's stream of long calls; Carol (node 1) and
//                     node 2 are idle. Alice runs inference over the partition:
//                     baseline: fixed placement (at the owner, Bob)
//                     ferry:    placement::automatic (the cost model)
//                     latency (median of sequential calls) and throughput
//                     (calls/s with a window of calls in flight), twice: with
//                     Bob as nodes run by default, where a short call runs in
//                     place, beside his busy executors (staying is right), and
//                     with Bob running every call on his executors
//                     (--inline-budget-us 0), where it waits behind the queue
//                     as a long call would (leaving is right)
//   staleness         round trips per call vs the fraction of calls whose
//                     owner cache is stale (objects moved since the caller's
//                     last call), for both directory schemes: mean and standard
//                     deviation over rounds, written as CSV (--csv FILE)
#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <utility>
#include <cstdio>
#include <deque>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <ferry/runtime.hpp>

#include "common/bench_report.hpp"
#include "common/local_cluster.hpp"
#include "rendezvous/inference.hpp"

using clock_type = std::chrono::steady_clock;
using ferry::bench::local_cluster;
using ferry::bench::median;
using ferry::bench::row;
using namespace rendezvous_case;  // the case's code: samples/rendezvous/inference.hpp

namespace {

struct options {
  std::string tls = "shm";
  bool json = false;
  std::string csv;
  int calls = 40;                       // inference calls per placement
  unsigned window = 4;                  // calls in flight for the throughput figure
  std::uint64_t model_bytes = 1 << 20;  // Alice's model partition
  std::uint64_t busy_rounds = 30'000'000;  // one saturating call's work (ms even on a quiet machine)
  unsigned saturate = 12;               // saturating calls in flight on Bob
  unsigned objects = 24;                // objects per staleness round
  int rounds = 5;                       // rounds per staleness point
  bool pin = true;                      // Bob on CPU 0, the other nodes on CPU 1
};

constexpr std::uint32_t kNodes = 3;
constexpr std::uint32_t kBob = 0;

void progress(const options& o, std::string_view what) {
  if (!o.json) fmt::print(stderr, "bench placement: {}\n", what);
}

[[noreturn]] void wrong(std::string_view what) {
  throw ferry::error(ferry::make_error(ferry::errc::corrupt, std::string(what)));
}

double us_since(clock_type::time_point t0) {
  return std::chrono::duration<double, std::micro>(clock_type::now() - t0).count();
}

struct placement_figures {
  std::string bob;  // how Bob runs the inference: "in place" or "queued"
  std::vector<row> rows;
  std::map<std::string, int> where;  // automatic calls by where they ran
  std::vector<ferry::node_info> nodes;  // what the nodes reported at the end (ferry stats)
};

// `queued`: Bob runs every call on his executors (the cluster's Bob was
// started with --inline-budget-us 0).
placement_figures alice_bob_carol(const options& o, const local_cluster& cl, bool queued) {
  placement_figures out;
  out.bob = queued ? "queued" : "in place";
  progress(o, fmt::format("Alice/Bob/Carol, inference {} on Bob: a {} KiB model on Bob, Bob saturated ({} calls of {} "
                          "rounds in flight)",
                          out.bob, o.model_bytes >> 10, o.saturate, o.busy_rounds));
  auto alice = cl.client();
  auto eve = cl.client();
  const std::uint64_t words = o.model_bytes / 8;
  const auto [model, w] = make_model(*alice, words, kBob);
  const auto cell = eve->objects().create<std::uint64_t>(1, ferry::on_node(kBob));
  auto expected = [&w](std::uint64_t input) { return infer_expected(w.data(), w.size(), input); };
  // Warm: the code on Bob (the other nodes get it when placement first sends a call there).
  if (alice->invoke(&infer, model, words, 0).get().value != expected(0)) wrong("infer: wrong answer");

  saturate load(*eve, cell, o.busy_rounds, o.saturate);
  // A queue, and enough calls ended that Bob's mean call time shows them.
  if (!wait_for_queue(*alice, kBob, o.saturate / 2, std::chrono::seconds(30))) wrong("Bob never reported a queue");
  // o.calls calls with o.window in flight under `opts`, every answer checked;
  // returns calls per second.
  const auto in_flight = [&](const ferry::call_options& opts) {
    std::deque<ferry::future<inference>> inflight;
    const auto t0 = clock_type::now();
    for (int i = 0; i < o.calls || !inflight.empty();) {
      while (i < o.calls && inflight.size() < o.window)
        inflight.push_back(alice->invoke_with(opts, &infer, model, words, std::uint64_t(i++)));
      if (inflight.front().get().value != expected(static_cast<std::uint64_t>(i) - inflight.size()))
        wrong("infer returned a wrong answer");
      inflight.pop_front();
    }
    return o.calls / (us_since(t0) / 1e6);
  };
  // In place, Bob's node settles how it runs the inference beside his busy
  // executors over its first calls there: without this warm-up (as many
  // calls as a throughput figure makes, default placement), whichever
  // placement was measured second had 1.3-2.6x the other's throughput in
  // place, the same calls on the same node (2026-12-05: 994-1393 calls/s
  // with the order reversed, 1.00x with the warm-up either way). Queued,
  // every call waits its turn anyway.
  if (!queued) (void)in_flight({});

  std::vector<double> lat[2];
  double rate[2] = {0, 0};
  for (int mode = 0; mode < 2; ++mode) {
    const ferry::call_options opts{.placement = mode == 0 ? ferry::placement::owner : ferry::placement::automatic};
    for (int i = 0; i < o.calls; ++i) {
      const auto t0 = clock_type::now();
      auto f = alice->invoke_with(opts, &infer, model, words, std::uint64_t(i));
      const auto r = f.get();
      lat[mode].push_back(us_since(t0));
      if (r.value != expected(i)) wrong("infer returned a wrong answer");
      if (mode == 1) ++out.where[fmt::format("{} {}", to_string(f.where().choice), r.node)];
    }
    rate[mode] = in_flight(opts);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(250));  // a heartbeat or two
  out.nodes = alice->nodes();
  out.rows.push_back({fmt::format("inference latency, Bob saturated, {}: fixed vs automatic ({})", out.bob, o.tls),
                      median(lat[0]), median(lat[1]), "us"});
  out.rows.push_back({fmt::format("inference throughput, {} in flight, {}: fixed vs automatic", o.window, out.bob),
                      rate[0], rate[1], "1/s"});
  return out;
}

struct staleness_point {
  std::string scheme;
  double staleness;  // fraction of calls whose cache was stale
  double mean, stddev;
  double latency_us;
};

std::vector<staleness_point> staleness(const options& o, const local_cluster& cl, const std::string& scheme) {
  progress(o, fmt::format("round trips vs staleness, {} directory: {} objects, {} rounds per point", scheme, o.objects,
                          o.rounds));
  auto mover = cl.client();
  auto caller = cl.client();
  std::mt19937 rng(12345);
  std::vector<ferry::ref<std::uint64_t>> objs;
  std::vector<std::uint32_t> at;
  for (unsigned k = 0; k < o.objects; ++k) {
    at.push_back(k % kNodes);
    objs.push_back(mover->objects().create<std::uint64_t>(1, ferry::on_node(at.back())));
  }
  auto call_all = [&](std::vector<double>* lat) {
    for (const auto& r : objs) {
      const auto t0 = clock_type::now();
      (void)caller->invoke(&busy, r, 0).get();
      if (lat) lat->push_back(us_since(t0));
    }
  };
  // Owner hints travel apart from answers: wait until they stop arriving.
  auto settled = [&] {
    auto last = caller->stats().redirects;
    for (int i = 0; i < 100; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      const auto now = caller->stats().redirects;
      if (now == last && i >= 2) break;
      last = now;
    }
    return caller->stats();
  };
  call_all(nullptr);  // warm: the caller's cache knows every owner
  (void)settled();
  std::vector<staleness_point> out;
  for (int step = 0; step <= 10; step += 2) {
    const double s = step / 10.0;
    const unsigned moves = static_cast<unsigned>(std::lround(s * o.objects));
    std::vector<double> trips, lat;
    for (int r = 0; r < o.rounds; ++r) {
      std::vector<unsigned> idx(o.objects);
      for (unsigned k = 0; k < o.objects; ++k) idx[k] = k;
      std::shuffle(idx.begin(), idx.end(), rng);
      for (unsigned m = 0; m < moves; ++m) {
        const unsigned k = idx[m];
        at[k] = (at[k] + 1 + rng() % (kNodes - 1)) % kNodes;
        mover->objects().migrate(objs[k], ferry::on_node(at[k]));
      }
      const auto s0 = caller->stats();
      call_all(&lat);
      const auto s1 = settled();
      const double requests = static_cast<double>(s1.requests - s0.requests);
      trips.push_back(1.0 + static_cast<double>((s1.redirects - s0.redirects) + (s1.lookups - s0.lookups)) / requests);
    }
    double mean = 0, var = 0;
    for (double t : trips) mean += t / trips.size();
    for (double t : trips) var += (t - mean) * (t - mean) / trips.size();
    out.push_back({scheme, static_cast<double>(moves) / o.objects, mean, std::sqrt(var), median(lat)});
  }
  return out;
}

// The CSV file, opened before anything is measured (a bad path fails at once).
std::FILE* open_csv(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (!f)
    throw ferry::error(ferry::make_error(ferry::errc::io_error, fmt::format("cannot write {}: {}", path,
                                                                          std::strerror(errno))));
  return f;
}

void write_csv(std::FILE* f, const std::string& path, const std::vector<staleness_point>& points) {
  fmt::print(f, "scheme,staleness,round_trips_mean,round_trips_stddev,latency_us_median\n");
  for (const auto& p : points)
    fmt::print(f, "{},{:.3f},{:.4f},{:.4f},{:.2f}\n", p.scheme, p.staleness, p.mean, p.stddev, p.latency_us);
  if (std::fclose(f) != 0)
    throw ferry::error(ferry::make_error(ferry::errc::io_error, fmt::format("cannot write {}", path)));
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ferry bench placement: the Alice/Bob/Carol case (Bob saturated, Carol idle) under fixed-owner vs\n"
               "automatic placement (latency, throughput), and round trips per call vs owner-cache staleness for\n"
               "the home and e2e directory schemes (the seed's Figure 3; --csv FILE), on three local nodes."};
  options o;
  app.name("ferry bench placement");
  app.add_option("--tls", o.tls, "UCX transport between the processes")->check(CLI::IsMember({"shm", "tcp"}));
  app.add_flag("--json", o.json, "Print JSON: the parameters and a list of {name, baseline, ferry, ratio, unit}");
  app.add_option("--csv", o.csv, "Write the staleness sweep as CSV to FILE");
  app.add_option("--calls", o.calls, "Inference calls per placement mode")->check(CLI::Range(1, 100000));
  app.add_option("--window", o.window, "Calls in flight for the throughput figure")->check(CLI::Range(1, 256));
  app.add_option("--model-bytes", o.model_bytes, "Size of Alice's model partition")->check(CLI::Range(8, 16 << 20));
  app.add_option("--busy-rounds", o.busy_rounds, "Work of one call that saturates Bob")->check(CLI::Range(0, 1 << 30));
  app.add_option("--objects", o.objects, "Objects per staleness round")->check(CLI::Range(1, 10000));
  app.add_option("--rounds", o.rounds, "Rounds per staleness point")->check(CLI::Range(1, 10000));
  app.add_flag("!--no-pin", o.pin, "Do not pin Bob to CPU 0 and the other nodes to CPU 1");
  for (auto* opt : app.get_options()) opt->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  ::setenv("UCX_NET_DEVICES", "lo", 0);  // one host: loopback only unless told otherwise
  std::FILE* csv = nullptr;
  try {
    if (!o.csv.empty()) csv = open_csv(o.csv);
    std::vector<row> rows;
    std::vector<placement_figures> cases;
    std::vector<staleness_point> points;
    auto node_args = [&o](bool queued) {
      return [&o, queued](std::uint32_t i) { return node_options(i, o.pin, queued); };
    };
    for (const std::string scheme : {"home", "e2e"}) {
      local_cluster cl(kNodes, o.tls, scheme, node_args(false));
      if (scheme == "home") cases.push_back(alice_bob_carol(o, cl, false));
      for (auto& pt : staleness(o, cl, scheme)) points.push_back(pt);
    }
    {
      local_cluster cl(kNodes, o.tls, "home", node_args(true));
      cases.push_back(alice_bob_carol(o, cl, true));
    }
    for (const auto& c : cases) rows.insert(rows.end(), c.rows.begin(), c.rows.end());
    if (csv) write_csv(std::exchange(csv, nullptr), o.csv, points);
    ferry::bench::print_rows(rows, o.json, "fixed",
                             ferry::bench::parameters()
                                 .add("nodes", kNodes)
                                 .add("tls", o.tls)
                                 .add("calls", o.calls)
                                 .add("window", o.window)
                                 .add("model_bytes", o.model_bytes)
                                 .add("busy_rounds", o.busy_rounds)
                                 .add("saturate", o.saturate)
                                 .add("objects", o.objects)
                                 .add("rounds", o.rounds)
                                 .add("pin", o.pin));
    if (!o.json) {
      for (const auto& c : cases) {
        std::string w;
        for (const auto& [k, n] : c.where) w += fmt::format("{}{} x{}", w.empty() ? "" : ", ", k, n);
        fmt::print("inference {} on Bob: automatic placement ran the calls: {}\n", c.bob, w);
        for (const auto& n : c.nodes)
          fmt::print("  node {} reported: {} calls run, {} on pulled data, {} bytes pulled, mean call {} us\n", n.id,
                     n.load.calls, n.load.pulled_calls, n.load.pulled_bytes, n.load.call_us);
      }
      fmt::print("{:<6} {:>9} {:>16} {:>10} {:>12}\n", "scheme", "staleness", "round trips/call", "stddev",
                 "latency us");
      for (const auto& p : points)
        fmt::print("{:<6} {:>9.2f} {:>16.3f} {:>10.3f} {:>12.1f}\n", p.scheme, p.staleness, p.mean, p.stddev,
                   p.latency_us);
    }
  } catch (const std::exception& e) {
    if (csv) std::fclose(csv);
    fmt::print(stderr, "ferry bench placement: {}\n", e.what());
    return 1;
  }
  return 0;
}
