// ferry-graph: BFS, PageRank and connected components over a graph split
// into partitions on S server processes, each kernel run twice — with its
// code sent to the partitions, and pulling the adjacency to the caller — and
// on request a third time, its code sent to S more nodes of the trusted
// policy (what bounds checks and fuel cost); every answer checked against
// Boost.Graph in this process. `ferry bench graph` runs this program;
// README.md shows its output.
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <ferry/runtime.hpp>

#include "bootstrap/rendezvous.hpp"
#include "common/bench_report.hpp"
#include "common/child_process.hpp"
#include "common/optimized_code.hpp"
#include "distributed.hpp"
#include "graph.hpp"

namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;

namespace {

struct options {
  std::uint32_t servers = 2;
  unsigned scale = 14;
  unsigned edge_factor = 16;
  std::uint64_t seed = 2026;
  std::string snap;
  std::uint32_t roots = 4;
  unsigned pagerank_iterations = 10;
  unsigned rounds = 3;  // PageRank and CC runs per version
  std::vector<std::string> kernels{"bfs", "pagerank", "cc"};
  std::vector<std::string> versions{"mobile", "pull"};
  std::string tls = "shm";
  std::string bfs = "auto";
  bool warmup = true;
  bool json = false;
};

graph::bfs_direction bfs_direction_of(std::string_view name) {  // --bfs checked it is one of the three
  if (name == "top-down") return graph::bfs_direction::top_down;
  if (name == "bottom-up") return graph::bfs_direction::bottom_up;
  return graph::bfs_direction::automatic;
}

bool has(const std::vector<std::string>& v, std::string_view x) { return std::find(v.begin(), v.end(), x) != v.end(); }

void say(std::string_view what) { fmt::print(stderr, "graph: {}\n", what); }

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

/// Prints "what: done of total" (or "what: done" when total is 0) once the
/// work has run half a second, then at most every half second, and at the
/// end if it printed before: quick work prints nothing.
graph::progress_fn progress_line(std::string what) {
  struct state {
    clock_type::time_point last = clock_type::now();
    bool printed = false;
  };
  auto st = std::make_shared<state>();
  return [what, st](std::uint64_t done, std::uint64_t total) {
    const bool end = total != 0 && done == total;
    if (clock_type::now() - st->last < std::chrono::milliseconds(500) && !(end && st->printed)) return;
    st->last = clock_type::now();
    st->printed = true;
    if (total) fmt::print(stderr, "graph: {}: {} of {} ({:.0f}%)\n", what, done, total, 100.0 * done / total);
    else fmt::print(stderr, "graph: {}: {}\n", what, done);
  };
}

/// One kernel in one version: time, steps, and whether the answer was right.
struct figure {
  double seconds = 0;
  unsigned steps = 0;
  std::uint64_t bytes_moved = 0;
  int runs = 0;
  /// Each measured run's figure, in order: BFS ms per search (and its TEPS
  /// in run_teps), PageRank ms per iteration, CC ms. The other version's
  /// run of the same index ran right before or after it.
  std::vector<double> run_ms, run_teps;
  /// BFS: traversed edges per second over its searches (Graph500: the
  /// harmonic mean).
  [[nodiscard]] double teps() const {
    const double inverse_sum =
        std::accumulate(run_teps.begin(), run_teps.end(), 0.0, [](double sum, double t) { return sum + 1 / t; });
    return static_cast<double>(run_teps.size()) / inverse_sum;
  }
};

struct results {
  std::map<std::string, std::map<std::string, figure>> by;  // kernel -> version -> figure
  int checked = 0, wrong = 0;
};

/// Undirected edges with both ends in the root's component (what Graph500
/// counts as traversed).
std::uint64_t component_edges(const graph::csr& g, const std::vector<std::uint64_t>& level) {
  std::uint64_t entries = 0;
  for (std::uint64_t v = 0; v < g.vertices; ++v)
    if (level[v] != graph::kUnvisited) entries += g.degree(v);
  return entries / 2;
}

void check(results& r, bool ok, const std::string& what, const std::string& why) {
  ++r.checked;
  if (ok) return;
  ++r.wrong;
  fmt::print(stderr, "graph: WRONG: {}: {}\n", what, why);
}

/// Where a version runs: the client of its cluster and the graph stored
/// there. `mobile-trusted` has a cluster of its own (nodes of the trusted
/// policy); `mobile` and `pull` share the other.
struct version_cluster {
  const ferry::runtime* rt = nullptr;
  graph::distributed_graph* dg = nullptr;
};
using clusters = std::map<std::string, version_cluster>;

/// The versions to run, in the order they take turns (rotating per pair).
std::vector<std::string> versions_in_order(const options& o) {
  std::vector<std::string> versions;
  for (const char* v : {"mobile", "pull", "mobile-trusted"})
    if (has(o.versions, v)) versions.emplace_back(v);
  return versions;
}

void run_kernels(const options& o, const graph::csr& g, const graph::reference& ref,
                 const std::vector<std::uint64_t>& roots, const clusters& where, results& out) {
  using graph::run_result;
  const std::vector<std::string> versions = versions_in_order(o);
  for (const std::string& version : versions) {
    const bool mobile = version != "pull";
    const ferry::runtime& rt = *where.at(version).rt;
    graph::distributed_graph& dg = *where.at(version).dg;
    if (o.warmup) {
      // Untimed rounds of every kernel first, as the pointer chase warms up:
      // the nodes' JIT recompiles long-running code optimized in the
      // background (docs/jit.md, tiers), the caller's buffers and heap grow.
      // After each round the nodes' recompiles are waited for (on 2 cores,
      // four of them take about a second, and rounds run meanwhile are
      // slower, not faster); rounds go on while they get faster by more
      // than a tenth, at most kWarmupRounds: the runs below measure the
      // steady state.
      constexpr int kWarmupRounds = 6;
      double last = 0;
      for (int round = 1; round <= kWarmupRounds; ++round) {
        const auto t0 = clock_type::now();
        dg.on_step(progress_line(fmt::format("warm-up ({}), round {}: steps", version, round)));
        if (has(o.kernels, "bfs")) (void)(mobile ? dg.bfs_mobile(roots[0], bfs_direction_of(o.bfs)) : dg.bfs_pull(roots[0]));
        if (has(o.kernels, "pagerank")) (void)(mobile ? dg.pagerank_mobile(1) : dg.pagerank_pull(1));
        if (has(o.kernels, "cc")) (void)(mobile ? dg.cc_mobile() : dg.cc_pull());
        const double took = seconds_since(t0);
        say(fmt::format("warm-up ({}), round {}: one untimed run of each kernel, {:.1f} ms", version, round,
                        took * 1e3));
        if (mobile && !ferry::bench::wait_for_optimized_code(rt, std::chrono::seconds(60), [](std::size_t n) {
              say(fmt::format("warm-up: {} nodes still optimizing the kernels' code", n));
            }))
          say("warm-up: the nodes did not finish optimizing the kernels' code within 60 s; measuring anyway");
        if (round > 1 && took > 0.9 * last) break;  // no longer getting faster
        last = took;
      }
    }
  }

  // The measured runs, the two versions back to back: the machine's speed
  // can change within minutes (docs/bench/README.md), so each mobile run is
  // compared with a pull run made next to it, the order alternating (BFS:
  // per root; PageRank and CC: per round).
  // With the trusted nodes too, three take turns in the same way.
  const auto each_version = [&](std::size_t pair, auto&& run) {
    ferry::bench::in_rotating_order(pair, versions.size(), [&](std::size_t v) {
      run(versions[v], versions[v] != "pull", *where.at(versions[v]).dg);
    });
  };
  if (has(o.kernels, "bfs")) {
    for (std::size_t i = 0; i < roots.size(); ++i) {
      each_version(i, [&](const std::string& version, bool mobile, graph::distributed_graph& dg) {
        figure& f = out.by["bfs"][version];
        dg.on_step(progress_line(fmt::format("BFS ({}) from {}: levels done", version, roots[i])));
        const run_result r = mobile ? dg.bfs_mobile(roots[i], bfs_direction_of(o.bfs)) : dg.bfs_pull(roots[i]);
        const std::string why = graph::validate_bfs(g, ref.level[i], roots[i], r.words);
        check(out, why.empty(), fmt::format("BFS ({}) from {}", version, roots[i]), why);
        const double teps = static_cast<double>(component_edges(g, ref.level[i])) / r.seconds;
        f.seconds += r.seconds, f.steps += r.steps, f.bytes_moved += r.bytes_moved, ++f.runs;
        f.run_ms.push_back(r.seconds * 1e3);
        f.run_teps.push_back(teps);
        say(fmt::format("BFS ({}) from {}: {} levels{}, {:.1f} ms, {:.3g} TEPS, parent tree {}", version, roots[i],
                        r.steps,
                        mobile ? fmt::format(", {} of {} steps top-down", r.top_down_steps, r.steps + 1) : std::string(),
                        r.seconds * 1e3, teps, why.empty() ? "valid" : "INVALID"));
      });
    }
  }
  for (unsigned round = 0; round < o.rounds; ++round) {
    const std::string of_rounds = o.rounds > 1 ? fmt::format(", round {} of {}", round + 1, o.rounds) : std::string();
    if (has(o.kernels, "pagerank")) {
      each_version(round, [&](const std::string& version, bool mobile, graph::distributed_graph& dg) {
        dg.on_step(progress_line(fmt::format("PageRank ({}): iterations", version)));
        const run_result r =
            mobile ? dg.pagerank_mobile(o.pagerank_iterations) : dg.pagerank_pull(o.pagerank_iterations);
        double worst = 0;
        for (std::uint64_t v = 0; v < g.vertices; ++v)
          worst = std::max(worst, std::fabs(std::bit_cast<double>(r.words[v]) - ref.rank[v]));
        check(out, worst <= 1e-9, fmt::format("PageRank ({})", version), fmt::format("off by {:.3g} (> 1e-9)", worst));
        figure& f = out.by["pagerank"][version];
        f.seconds += r.seconds, f.steps += r.steps, f.bytes_moved += r.bytes_moved, ++f.runs;
        f.run_ms.push_back(r.seconds * 1e3 / std::max(1u, r.steps));
        say(fmt::format("PageRank ({}){}: {} iterations, {:.1f} ms ({:.2f} ms per iteration), largest difference "
                        "from Boost {:.2g}",
                        version, of_rounds, r.steps, r.seconds * 1e3, f.run_ms.back(), worst));
      });
    }
    if (has(o.kernels, "cc")) {
      each_version(round, [&](const std::string& version, bool mobile, graph::distributed_graph& dg) {
        dg.on_step(progress_line(fmt::format("connected components ({}): iterations", version)));
        const run_result r = mobile ? dg.cc_mobile() : dg.cc_pull();
        std::uint64_t differ = 0;
        for (std::uint64_t v = 0; v < g.vertices; ++v) differ += r.words[v] != ref.component[v];
        check(out, differ == 0, fmt::format("connected components ({})", version),
              fmt::format("{} vertices in another component than Boost's", differ));
        figure& f = out.by["cc"][version];
        f.seconds += r.seconds, f.steps += r.steps, f.bytes_moved += r.bytes_moved, ++f.runs;
        f.run_ms.push_back(r.seconds * 1e3);
        say(fmt::format("connected components ({}){}: {} iterations, {:.1f} ms, {}", version, of_rounds, r.steps,
                        r.seconds * 1e3, differ == 0 ? "same components as Boost" : "WRONG"));
      });
    }
  }
}

void report(const options& o, const graph::csr& g, const results& r) {
  std::vector<ferry::bench::row> rows;
  const std::string where = fmt::format("{} servers, {}", o.servers, o.tls);
  // A kernel's figures of two versions (baseline first), if both ran.
  auto pair_of = [&](const char* kernel, const char* baseline,
                     const char* measured) -> std::pair<const figure*, const figure*> {
    auto k = r.by.find(kernel);
    if (k == r.by.end() || !k->second.count(baseline) || !k->second.count(measured)) return {nullptr, nullptr};
    return {&k->second.at(baseline), &k->second.at(measured)};
  };
  auto both = [&](const char* kernel) { return pair_of(kernel, "pull", "mobile"); };
  // Times: the median of the runs, with the range of the paired runs' ratios.
  const auto timed = [&](std::string name, const figure& pull, const figure& mobile) {
    return ferry::bench::row{std::move(name), ferry::bench::median(pull.run_ms), ferry::bench::median(mobile.run_ms),
                             "ms", ferry::bench::paired_ratio_range(pull.run_ms, mobile.run_ms)};
  };
  if (auto [pull, mobile] = both("bfs"); pull) {
    rows.push_back(timed(fmt::format("BFS, ms per search, mobile vs pull ({})", where), *pull, *mobile));
    rows.push_back({fmt::format("BFS, TEPS, mobile vs pull ({})", where), pull->teps(), mobile->teps(), "TEPS",
                    ferry::bench::paired_ratio_range(pull->run_teps, mobile->run_teps)});
  }
  if (auto [pull, mobile] = both("pagerank"); pull)
    rows.push_back(timed(fmt::format("PageRank, ms per iteration, mobile vs pull ({})", where), *pull, *mobile));
  if (auto [pull, mobile] = both("cc"); pull)
    rows.push_back(timed(fmt::format("connected components, ms, mobile vs pull ({})", where), *pull, *mobile));
  // The cost of bounds checks and fuel: the same mobile code on the
  // checked nodes against the trusted policy's.
  const std::string vs_trusted = fmt::format("checked vs trusted nodes ({})", where);
  if (auto [trusted, mobile] = pair_of("bfs", "mobile-trusted", "mobile"); trusted)
    rows.push_back({fmt::format("BFS, TEPS, {}", vs_trusted), trusted->teps(), mobile->teps(), "TEPS",
                    ferry::bench::paired_ratio_range(trusted->run_teps, mobile->run_teps)});
  if (auto [trusted, mobile] = pair_of("pagerank", "mobile-trusted", "mobile"); trusted)
    rows.push_back(timed(fmt::format("PageRank, ms per iteration, {}", vs_trusted), *trusted, *mobile));
  if (auto [trusted, mobile] = pair_of("cc", "mobile-trusted", "mobile"); trusted)
    rows.push_back(timed(fmt::format("connected components, ms, {}", vs_trusted), *trusted, *mobile));
  ferry::bench::parameters params;
  params.add("servers", o.servers).add("tls", o.tls);
  if (o.snap.empty()) params.add("scale", o.scale).add("edge_factor", o.edge_factor).add("seed", o.seed);
  else params.add("snap", o.snap);
  params.add("vertices", g.vertices)
      .add("edges", g.adjacency.size() / 2)
      .add("roots", o.roots)
      .add("pagerank_iterations", o.pagerank_iterations)
      .add("rounds", o.rounds)
      .add("bfs", o.bfs)
      .add("warmup", o.warmup);
  if (!rows.empty())
    ferry::bench::print_rows(rows, o.json, has(o.versions, "mobile-trusted") ? "baseline" : "pull", params);
  if (o.json) return;
  std::size_t width = 22;  // of the first column: as wide as its longest label, and at least this
  for (const auto& [kernel, versions] : r.by)
    for (const auto& [version, f] : versions) width = std::max(width, kernel.size() + version.size() + 4);
  fmt::print("\n{:<{}} {:>14} {:>14} {:>10} {:>14}\n", "kernel (version)", width, "time (ms)", "steps", "runs",
             "bytes moved");
  for (const auto& [kernel, versions] : r.by)
    for (const auto& [version, f] : versions)
      fmt::print("{:<{}} {:>14.1f} {:>14} {:>10} {:>11.1f} MB\n", fmt::format("{} ({})", kernel, version), width,
                 f.seconds * 1e3, f.steps, f.runs, f.bytes_moved / 1e6);
  if (auto [pull, mobile] = both("bfs"); pull) {
    const bool sized = o.snap.empty() && o.scale >= 18 && o.servers >= 4;
    const double speedup = pull->seconds / pull->runs / (mobile->seconds / mobile->runs);
    fmt::print("BFS: mobile {:.3g} TEPS, pull {:.3g} TEPS: mobile {:.2f}x as fast; target >= 2x at scale >= 18 with 4 "
               "servers: {}\n",
               mobile->teps(), pull->teps(), speedup,
               sized ? (speedup >= 2 ? "met" : "missed") : "not measured (needs --scale 18 --servers 4)");
  }
  fmt::print("{} answers checked against Boost.Graph, {} wrong\n", r.checked, r.wrong);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "ferry-graph: BFS, PageRank and connected components on a graph split into S partitions on S server\n"
      "processes (1-D, by vertex blocks; CSR per partition; the partitions linked by ferry::ptrs).\n"
      "Each kernel runs twice: 'mobile' sends its code to the partitions (each reads its adjacency in\n"
      "place and pulls only the other partitions' vertex values with cx.fetch; BFS goes top-down while\n"
      "the frontier is small, else bottom-up), 'pull' runs it in this process, reading the adjacency it\n"
      "needs from the partitions (BFS top-down). With --versions ...,mobile-trusted the mobile code also\n"
      "runs on S more nodes of the trusted policy (no bounds checks, no fuel), in the same rounds.\n"
      "The graph is Graph500's Kronecker graph (--scale, --edge-factor, --seed) or a SNAP edge list\n"
      "(--snap FILE), made undirected and simple. Every answer is checked against Boost.Graph in this\n"
      "process: BFS parent trees by Graph500's validation, PageRank within 1e-9 (Boost's definition:\n"
      "ranks start at 1/n, rank' = 0.15 + 0.85 * sum of rank/degree over the neighbours), components\n"
      "exactly. The exit status is 1 if any answer is wrong. Progress goes to stderr."};
  app.name("ferry-graph");
  options o;
  app.add_option("-s,--servers", o.servers, "Server processes (one partition each)")
      ->check(CLI::Range(1u, graph::kMaxParts));
  app.add_option("--scale", o.scale, "Kronecker graph of 2^scale vertices (the caller holds it and Boost.Graph's copy)")
      ->check(CLI::Range(1u, 22u));
  app.add_option("--edge-factor", o.edge_factor, "Kronecker edges per vertex")->check(CLI::Range(1u, 64u));
  app.add_option("--seed", o.seed, "Seed of the generator and of the BFS roots");
  app.add_option("--snap", o.snap, "Load this SNAP edge list instead of generating a graph")->check(CLI::ExistingFile);
  app.add_option("--roots", o.roots, "BFS searches, from random vertices that have edges")->check(CLI::Range(1u, 64u));
  app.add_option("--pagerank-iterations", o.pagerank_iterations, "PageRank iterations")->check(CLI::Range(1u, 1000u));
  app.add_option("--rounds", o.rounds,
                 "Measured runs of PageRank and of connected components per version. Each run of one version "
                 "is paired with one of the other, back to back, the order alternating (BFS: one pair per "
                 "root); times are the medians, with the range of the pairs' ratios")
      ->check(CLI::Range(1u, 100u));
  app.add_option("--kernels", o.kernels, "Kernels to run, comma-separated: bfs, pagerank, cc")
      ->delimiter(',')
      ->check(CLI::IsMember({"bfs", "pagerank", "cc"}));
  app.add_option("--versions", o.versions,
                 "Versions to run, comma-separated: mobile, pull, mobile-trusted (the mobile code on S more nodes "
                 "of the trusted policy, `ferry node --unchecked --unmetered`, measured in the same rounds: what "
                 "bounds checks and fuel cost)")
      ->delimiter(',')
      ->check(CLI::IsMember({"mobile", "pull", "mobile-trusted"}));
  app.add_option("--bfs", o.bfs,
                 "How the mobile BFS goes through a level: auto (top-down while the frontier is small: its edges "
                 "fewer than a 14th of the unreached vertices', or its vertices fewer than a 24th of all; else "
                 "bottom-up), top-down (every level whose pairs fit the outboxes), bottom-up")
      ->check(CLI::IsMember({"auto", "top-down", "bottom-up"}));
  app.add_option("--tls", o.tls, "UCX transport between the processes")->check(CLI::IsMember({"shm", "tcp"}));
  app.add_flag("--warmup,!--no-warmup", o.warmup,
               "Run every kernel untimed before the measured runs, in rounds until they stop getting faster (the "
               "nodes' JIT optimizes long-running code in the background); --no-warmup measures from the first run");
  app.add_flag("--json", o.json, "Print JSON: the parameters and a list of {name, baseline, ferry, ratio, unit}");
  for (auto* opt : app.get_options()) opt->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  ::setenv("UCX_NET_DEVICES", "lo", 0);  // one host: loopback only unless told otherwise

  graph::csr g;
  try {
    auto t0 = clock_type::now();
    graph::edge_list edges;
    std::uint64_t vertices = 0;
    if (o.snap.empty()) {
      say(fmt::format("generating a Kronecker graph: scale {}, edge factor {}, seed {}", o.scale, o.edge_factor, o.seed));
      edges = graph::kronecker(o.scale, o.edge_factor, o.seed, progress_line("edges generated"));
      vertices = std::uint64_t{1} << o.scale;
    } else {
      say(fmt::format("loading {}", o.snap));
      edges = graph::load_snap(o.snap, vertices, progress_line("edges read"));
    }
    g = graph::build_csr(vertices, edges);
    say(fmt::format("{} vertices, {} undirected edges (no self loops, no duplicates) in {:.1f} s", g.vertices,
                    g.adjacency.size() / 2, seconds_since(t0)));
  } catch (const std::exception& e) {
    fmt::print(stderr, "ferry-graph: {}\n", e.what());
    return 1;
  }
  if (g.adjacency.empty()) {
    fmt::print(stderr, "ferry-graph: the graph has no edges\n");
    return 1;
  }
  std::vector<std::uint64_t> roots;
  {
    std::mt19937_64 rng(o.seed ^ 0x9e3779b97f4a7c15ULL);
    while (roots.size() < o.roots) {
      const std::uint64_t v = rng() % g.vertices;
      if (g.degree(v) > 0) roots.push_back(v);
    }
  }
  auto t0 = clock_type::now();
  say("single-process reference (Boost.Graph): BFS from each root, PageRank, connected components");
  const graph::reference ref = graph::compute_reference(g, roots, o.pagerank_iterations);
  say(fmt::format("reference done in {:.1f} s: {} components", seconds_since(t0), ref.components));

  // One cluster of S nodes and the graph stored on it: `trusted` nodes
  // run the trusted policy (no bounds checks, no fuel).
  struct stored_graph {
    ferry::bench::scratch_servers servers;  // stopped and removed when the run ends
    ferry::runtime rt;
    clock_type::time_point storing_from;
    graph::distributed_graph dg;
    stored_graph(const options& o, const graph::csr& g, bool trusted)
        : servers(trusted ? "ferry-graph-trusted" : "ferry-graph"),
          rt(join(o, servers, trusted)),
          storing_from(clock_type::now()),
          dg(rt, g, o.servers, progress_line(fmt::format("storing {} partitions{} (words)", o.servers, on(trusted)))) {
      say(fmt::format("stored and linked {} partitions{} in {:.1f} s", o.servers, on(trusted),
                      seconds_since(storing_from)));
    }
    static std::string on(bool trusted) { return trusted ? " on the trusted nodes" : ""; }
    static ferry::runtime_options join(const options& o, ferry::bench::scratch_servers& servers, bool trusted) {
      const fs::path& dir = servers.dir();
      ferry::cluster::rendezvous(dir).init(o.servers).value();
      const std::string ferry = ferry::bench::ferry_next_to_self();
      for (std::uint32_t s = 0; s < o.servers; ++s) {
        std::vector<std::string> argv{ferry,       "node",    "--index",   std::to_string(s),
                                      "--rendezvous", dir.string(), "--jit-cache", (dir / fmt::format("jit-{}", s)).string(),
                                      "--tls",     o.tls};
        if (trusted) argv.insert(argv.end(), {"--unchecked", "--unmetered"});
        servers.start(argv);
      }
      say(fmt::format("{} server processes started ({}{}); joining them", o.servers, o.tls,
                      trusted ? ", trusted policy: --unchecked --unmetered" : ""));
      ferry::runtime_options ro;
      ro.rendezvous = dir;
      ro.tls = o.tls;
      ro.join_timeout = std::chrono::milliseconds(60000);
      return ro;
    }
  };

  int rc = 0;
  try {
    std::optional<stored_graph> checked, trusted;
    clusters where;
    if (has(o.versions, "mobile") || has(o.versions, "pull")) {
      checked.emplace(o, g, false);
      where["mobile"] = where["pull"] = {&checked->rt, &checked->dg};
    }
    if (has(o.versions, "mobile-trusted")) {
      trusted.emplace(o, g, true);
      where["mobile-trusted"] = {&trusted->rt, &trusted->dg};
    }
    results r;
    run_kernels(o, g, ref, roots, where, r);
    report(o, g, r);
    rc = r.wrong == 0 ? 0 : 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "ferry-graph: {}\n", e.what());
    rc = 1;
  }
  return rc;
}
