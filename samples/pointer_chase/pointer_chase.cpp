// ferry-pointer-chase: the X-RDMA pointer chase in every mode, in one run.
// It starts S bare-UCX server processes that serve the baselines (`am`: a
// pre-deployed chase handler; `get`: one-sided reads) and S `ferry node`s to
// which the `ferry` mode ships its code, all alive through the run. The modes
// are measured in interleaved rounds (run()); while the ferry nodes are
// measured the bare-UCX servers are parked (blocked in the kernel), while the
// baselines are the ferry nodes sleep (they do when idle).
// Every chase's endpoint is checked against the same chase followed locally.
// `ferry bench chase` runs this program; README.md shows its output. With
// `--report ifunc` (`ferry bench ifunc`) it adds the `ifunc` mode, the same
// chase as a UCX ifunc through ferry's compat API in the servers' bare-UCX
// phase, and compares it with am, get and ferry, and the `ifunc-nodes` mode,
// the same chase through <ferry/ifunc.h> on the ferry nodes (nchase.c),
// compared with ferry's forwarded call between the same processes
// (docs/ifunc.md).
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <ferry/ifunc.h>
#include <ferry/runtime.hpp>

#include "bootstrap/rendezvous.hpp"
#include "chase.hpp"
#include "common/bench_report.hpp"
#include "common/child_process.hpp"
#include "common/optimized_code.hpp"
#include "nchase.h"
#include "raw_chase.hpp"

extern const unsigned char ferry_nchase_bc[];  // nchase.c, built by `ferry ifunc build`
extern const unsigned long ferry_nchase_bc_size;

// nchase.c reads the `ferry` mode's shard objects.
static_assert(sizeof(nchase_shard_t) == sizeof(chase_shard) && NCHASE_MAX_SHARDS == chase_table::kMaxShards &&
              offsetof(nchase_shard_t, all) == offsetof(chase_shard, all) && sizeof(ferry_ref) == sizeof(ferry::ref<chase_shard>));

namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;

namespace {

struct options {
  std::uint32_t servers = 2;
  unsigned log2_entries = 20;
  std::vector<std::uint32_t> depths{1, 4, 16, 64, 256, 1024, 4096};
  int chases = 200;
  double seconds_per_case = 0.4;
  int rounds = 5;
  std::string tls = "shm";
  std::vector<std::string> modes{"ferry", "am", "get", "ferry-trusted"};
  std::string report = "chase";  // or "ifunc": the rows of `ferry bench ifunc`
  std::uint64_t seed = 2026;
  bool json = false;
  bool preload = false;  // rt.preload the chase on every node before the first chase
};

bool has_mode(const options& o, std::string_view m) {
  return std::find(o.modes.begin(), o.modes.end(), m) != o.modes.end();
}

void progress(const options& o, std::string_view what) {
  if (!o.json) fmt::print(stderr, "pointer chase: {}\n", what);
}

/// One case's figure: microseconds per chase, and how many chases it ran.
struct figure {
  double us_per_chase = 0;
  int chases = 0;
};

/// Run chases from `starts`, over and over, until `o.seconds_per_case` has
/// passed (at least 3 chases), and check each endpoint against `expect`;
/// `wrong` counts mismatches. Time-bound rather than count-bound: a batch of
/// short chases must last long enough that the processes' wake-ups after a
/// change of mode are not what it measures.
figure measure(const options& o, const std::vector<std::uint64_t>& starts, const std::vector<std::uint64_t>& expect,
               const std::function<std::uint64_t(std::uint64_t)>& one, std::uint64_t& wrong) {
  const auto t0 = clock_type::now();
  const auto budget = std::chrono::duration<double>(o.seconds_per_case);
  int n = 0;
  for (;; ++n) {
    if (n >= 3 && clock_type::now() - t0 > budget) break;
    const std::size_t k = static_cast<std::size_t>(n) % starts.size();
    if (one(starts[k]) != expect[k]) ++wrong;
  }
  return {std::chrono::duration<double, std::micro>(clock_type::now() - t0).count() / n, n};
}

// ---- server -----------------------------------------------------------------

// Whether the run needs the bare-UCX servers.
bool raw_phase(const options& o) { return has_mode(o, "am") || has_mode(o, "get") || has_mode(o, "ifunc"); }

// What a server process of the run is.
enum class server_role {
  raw,             // the bare-UCX modes' server: returns when the client says stop
  node,            // a ferry node (this process becomes it)
  trusted_node,    // a ferry node of the trusted policy: no bounds checks, no fuel (`--unchecked --unmetered`)
};

// The trusted policy's ferry nodes form a cluster of their own, here.
fs::path trusted_dir(const fs::path& dir) { return dir / "trusted"; }

// Server `index` of the run, in the role `role`.
int serve(const fs::path& dir, const options& o, std::uint32_t index, server_role role) {
  if (role == server_role::raw) {
    auto slots = chase_table::shard(chase_table::make(o.log2_entries, o.seed), index, o.servers);
    if (auto s = chase_raw::serve(dir, o.tls, index, o.servers, std::move(slots), has_mode(o, "ifunc"), 60000); !s) {
      fmt::print(stderr, "pointer chase server {}: {}\n", index, s.error().describe());
      return 1;
    }
    return 0;
  }
  const fs::path cluster = role == server_role::trusted_node ? trusted_dir(dir) : dir;
  const std::string ferry = ferry::bench::ferry_next_to_self();
  std::vector<std::string> argv{ferry,       "node",     "--index", std::to_string(index), "--rendezvous",
                                cluster.string(), "--jit-cache", (cluster / fmt::format("jit-{}", index)).string()};
  if (!o.tls.empty()) argv.insert(argv.end(), {"--tls", o.tls});
  if (role == server_role::trusted_node) argv.insert(argv.end(), {"--unchecked", "--unmetered"});
  ferry::bench::exec_argv(std::move(argv));
  fmt::print(stderr, "pointer chase server: cannot run {}: {}\n", ferry, std::strerror(errno));
  return 127;
}

// The command line of server `index` in the role `role`: this program's `serve`.
std::vector<std::string> server_argv(const fs::path& dir, const options& o, std::uint32_t index, server_role role) {
  std::vector<std::string> argv{ferry::bench::self_path(), "serve", "--dir", dir.string(), "--index",
                                std::to_string(index), "--servers", std::to_string(o.servers), "--log2-entries",
                                std::to_string(o.log2_entries), "--seed", std::to_string(o.seed), "--tls", o.tls};
  if (role == server_role::node) argv.push_back("--node");
  if (role == server_role::trusted_node) argv.push_back("--trusted-node");
  if (has_mode(o, "ifunc")) argv.push_back("--ifunc");
  return argv;
}

// ---- client -----------------------------------------------------------------

/// The ifunc-nodes mode: nchase.c through <ferry/ifunc.h>, sent to the node
/// that holds the start, answered by nchase_main run here by the wait.
class node_ifunc_chase {
 public:
  node_ifunc_chase(const chase_shard& header, std::uint32_t shards)
      : header_(header), shards_(shards) {
    ferry_ifunc_context_params cp{FERRY_IFUNC_CONTEXT_FIELD_NAME, "pointer chase"};
    check(ferry_ifunc_context_create(&cp, &cx_), "context");
    const ferry_ifunc_bitcode bc{"x86_64-unknown-linux-gnu", ferry_nchase_bc, ferry_nchase_bc_size};
    ferry_ifunc_register_params rp{};
    rp.field_mask = FERRY_IFUNC_REGISTER_FIELD_NAME | FERRY_IFUNC_REGISTER_FIELD_PURE | FERRY_IFUNC_REGISTER_FIELD_BITCODE;
    rp.name = "nchase";
    rp.pure = 1;
    rp.bitcode = &bc;
    rp.n_bitcode = 1;
    check(ferry_ifunc_register(cx_, &rp, &fn_), "register nchase");
  }
  ~node_ifunc_chase() { ferry_ifunc_context_destroy(cx_); }
  node_ifunc_chase(const node_ifunc_chase&) = delete;
  node_ifunc_chase& operator=(const node_ifunc_chase&) = delete;

  std::uint64_t chase(std::uint64_t start, std::uint32_t depth) {
    nchase_args_t a{start, depth, ++tag_};
    ferry_ifunc_msg msg{};
    check(ferry_ifunc_msg_create(cx_, fn_, &a, sizeof a, &msg), "message");
    const auto& first = header_.all[start % shards_];
    ferry_ifunc_send_params where{FERRY_IFUNC_SEND_FIELD_NODE | FERRY_IFUNC_SEND_FIELD_TARGET,
                                  static_cast<std::uint32_t>(start % shards_),
                                  ferry_ref{first.id.hi, first.id.lo, first.offset}, 0};
    const auto sent = ferry_ifunc_send(cx_, &msg, &where);
    ferry_ifunc_msg_free(&msg);
    check(sent, "send");
    nchase_answer_t answer{};
    // Waits as a call's future does: polls, then sleeps on the transport,
    // leaving the cores to the nodes on a long walk.
    const auto until = clock_type::now() + std::chrono::seconds(60);
    while (!answer.answered || answer.args.tag != tag_) {
      const auto st = ferry_ifunc_wait(cx_, buffer_.data(), buffer_.size() * 8, &answer, 1000);
      if (st != FERRY_IFUNC_NO_MESSAGE) check(st, "wait");
      if (clock_type::now() > until) throw std::runtime_error("ifunc-nodes: no answer in 60 s");
    }
    return answer.args.index;
  }

 private:
  static void check(ferry_ifunc_status st, std::string_view what) {
    if (st != 0) throw std::runtime_error(fmt::format("ifunc-nodes: {}: {}", what, ferry_ifunc_last_error()));
  }
  chase_shard header_;
  std::uint32_t shards_;
  ferry_ifunc_context* cx_ = nullptr;
  ferry_ifunc_h fn_ = 0;
  std::uint32_t tag_ = 0;
  // The first answer carries the code (a few KiB of bitcode).
  std::vector<std::uint64_t> buffer_ = std::vector<std::uint64_t>(8192);
};

struct results {
  std::map<std::string, std::map<std::uint32_t, figure>> by_mode;  // mode -> depth -> figure (median of the rounds)
  std::map<std::string, std::map<std::uint32_t, std::vector<double>>> rounds;  // mode -> depth -> us per chase, by round
  double cold_us = 0, ifunc_cold_us = 0, nodes_cold_us = 0;
  std::uint64_t wrong = 0, chases = 0;
};

// Whether `mode` runs on the bare-UCX servers (the others run on the ferry nodes).
bool raw_mode(std::string_view mode) { return mode == "am" || mode == "get" || mode == "ifunc"; }

/// A cluster of ferry nodes holding the table's shards (shard s on node s),
/// and this process's runtime in it.
struct ferry_nodes {
  ferry::runtime rt;
  chase_shard header;

  ferry_nodes(const options& o, const fs::path& dir, const std::vector<std::uint64_t>& table, std::string_view mode)
      : rt(runtime_options(o, dir, mode)) {
    std::vector<std::uint32_t> nodes(o.servers);
    std::iota(nodes.begin(), nodes.end(), 0u);
    header = place_shards(rt, table, nodes, [&](std::uint32_t s, std::size_t entries) {
      progress(o, fmt::format("{}: loading shard {} ({} entries) onto node {}", mode, s, entries, s));
    });
  }
  std::uint64_t chase(std::uint64_t start, std::uint32_t depth) {
    return rt.invoke(&::chase, header.all[start % header.shards], start, depth).get();
  }
  /// Ship the chase to every node and compile it there, running nothing
  /// (rt.preload, all nodes at once); returns the time in µs.
  double preload() {
    const auto t0 = clock_type::now();
    std::vector<ferry::future<void>> loads;
    for (std::uint32_t s = 0; s < header.shards; ++s) loads.push_back(rt.preload(&::chase, ferry::on_node(s)));
    for (auto& l : loads) l.get();
    return std::chrono::duration<double, std::micro>(clock_type::now() - t0).count();
  }
  /// The first chase: ship the code with the call (unless preloaded), JIT
  /// it, one hop, answer; checked into `out`. Returns its time in µs.
  double first_chase(const std::vector<std::uint64_t>& table, results& out) {
    const auto t0 = clock_type::now();
    if (chase(0, 1) != table[0]) ++out.wrong;
    ++out.chases;
    return std::chrono::duration<double, std::micro>(clock_type::now() - t0).count();
  }

 private:
  static ferry::runtime_options runtime_options(const options& o, const fs::path& dir, std::string_view mode) {
    progress(o, fmt::format("{}: joining the nodes", mode));
    ferry::runtime_options ro;
    ro.rendezvous = dir;
    ro.tls = o.tls;
    ro.join_timeout = std::chrono::milliseconds(60000);
    return ro;
  }
};

// Chases per node before the rounds (warm-up, run()): past the JIT's
// tier-up after 1000 calls.
constexpr std::uint32_t kWarmCallsPerNode = 3000;
// Their depth: with more than one shard, a chase of depth 4 is forwarded
// from node to node about 3(S-1)/S times, so the warm-up also runs the
// nodes' forwarding: a node's first 64 frames to each other node fault in
// that node's UCX shm receive buffers (docs/transports.md, "Known
// problems"), which slowed the first round's forwarding chases 2-3x while
// the warm-up was of depth 1 (a depth-1 chase never forwards).
constexpr std::uint32_t kWarmDepth = 4;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int run(const options& o, const fs::path& dir, results& out) {
  progress(o, fmt::format("table of 2^{} entries, {} shards, seed {}", o.log2_entries, o.servers, o.seed));
  const auto table = chase_table::make(o.log2_entries, o.seed);
  // Each round's batch has its own starts, the same for every mode; the
  // expected endpoints followed locally.
  const int per_batch = std::max(3, (o.chases + o.rounds - 1) / o.rounds);
  std::map<std::uint32_t, std::pair<std::vector<std::uint64_t>, std::vector<std::uint64_t>>> cases;
  for (std::uint32_t d : o.depths) {
    std::mt19937_64 rng(o.seed + d);
    auto& [starts, expect] = cases[d];
    for (int i = 0; i < per_batch * o.rounds; ++i) {
      starts.push_back(rng() % table.size());
      expect.push_back(chase_table::follow(table, starts.back(), d));
    }
  }

  // The bare-UCX servers first: the ifunc mode's first chase carries its code.
  std::unique_ptr<chase_raw::client> raw;
  if (raw_phase(o)) {
    auto c = chase_raw::client::connect(dir, o.tls, o.servers, has_mode(o, "ifunc"));
    if (!c) throw ferry::error(c.error());
    raw = std::move(*c);
  }
  auto value = [](ferry::result<std::uint64_t> r) {
    if (!r) throw ferry::error(r.error());
    return *r;
  };
  if (has_mode(o, "ifunc")) {  // the first ifunc chase: the code travels and is JIT-compiled at each server
    const auto t0 = clock_type::now();
    if (value(raw->chase_ifunc(0, o.servers)) != chase_table::follow(table, 0, o.servers)) ++out.wrong;
    out.ifunc_cold_us = std::chrono::duration<double, std::micro>(clock_type::now() - t0).count();
    ++out.chases;
  }
  bool parked = false;  // the bare-UCX servers, while the ferry nodes are measured
  auto park = [&](bool p) {
    if (!raw || p == parked) return;
    if (auto s = raw->park(p); !s) throw ferry::error(s.error());
    parked = p;
  };

  // The ferry nodes (and the trusted policy's, a cluster of their own).
  std::unique_ptr<ferry_nodes> checked, trusted;
  std::unique_ptr<node_ifunc_chase> nodes;
  if (has_mode(o, "ferry")) {
    park(true);
    checked = std::make_unique<ferry_nodes>(o, dir, table, "ferry");
    if (o.preload)
      progress(o, fmt::format("ferry: chase preloaded on {} nodes in {:.2f} ms", o.servers, checked->preload() / 1000));
    out.cold_us = checked->first_chase(table, out);
    if (has_mode(o, "ifunc-nodes")) {  // the first chase: the code travels to each node it reaches, which compiles it
      // (before the trusted cluster's runtime: <ferry/ifunc.h> attaches to the newest runtime)
      nodes = std::make_unique<node_ifunc_chase>(checked->header, o.servers);
      const auto t0 = clock_type::now();
      if (nodes->chase(0, o.servers) != chase_table::follow(table, 0, o.servers)) ++out.wrong;
      out.nodes_cold_us = std::chrono::duration<double, std::micro>(clock_type::now() - t0).count();
      ++out.chases;
    }
  }
  if (has_mode(o, "ferry-trusted")) {
    park(true);
    trusted = std::make_unique<ferry_nodes>(o, trusted_dir(dir), table, "ferry-trusted");
    if (o.preload) (void)trusted->preload();
    (void)trusted->first_chase(table, out);
  }
  auto one = [&](std::string_view mode, std::uint64_t s, std::uint32_t d) -> std::uint64_t {
    if (mode == "am") return value(raw->chase_am(s, d));
    if (mode == "get") return value(raw->chase_get(s, d));
    if (mode == "ifunc") return value(raw->chase_ifunc(s, d));
    if (mode == "ifunc-nodes") return nodes->chase(s, d);
    return (mode == "ferry" ? checked : trusted)->chase(s, d);
  };

  // Rounds: in each, every mode runs a batch at every depth, the modes'
  // order rotating from round to round, so a change of the machine's load
  // falls on every mode alike; a mode's figure is the median of its batches.
  std::vector<std::string> modes;
  for (const char* m : {"am", "get", "ifunc", "ferry", "ferry-trusted", "ifunc-nodes"})
    if (has_mode(o, m)) modes.emplace_back(m);
  // Warm-up, before the rounds: a ferry node runs the chase at the JIT's
  // fast tier first and, after 1000 calls through it (jit_config::
  // hot_call_threshold), compiles it again, optimized, on its JIT worker —
  // which competes with the chases for the two cores meanwhile. The rounds
  // measure the code as it then stays: each mode on ferry nodes first makes
  // kWarmCallsPerNode chases of kWarmDepth per node (starts spread over the
  // shards), checked like the others, then waits until no node reports a
  // recompile in hand (node_load::recompiling); the bare-UCX modes need no
  // more than each batch's own first calls.
  for (const auto& mode : modes) {
    if (raw_mode(mode)) continue;
    park(true);
    progress(o, fmt::format("warm-up ({}): {} chases of depth {} per node, so that every node runs its optimized "
                            "code{}",
                            mode, kWarmCallsPerNode, kWarmDepth,
                            o.servers > 1 ? " and has forwarded to the others" : ""));
    std::mt19937_64 rng(o.seed ^ 0x5eed);
    for (std::uint32_t i = 0; i < kWarmCallsPerNode * o.servers; ++i) {
      const std::uint64_t start = rng() % table.size();
      if (one(mode, start, kWarmDepth) != chase_table::follow(table, start, kWarmDepth)) ++out.wrong;
      ++out.chases;
    }
    // The optimized compiles those calls started, done on every node.
    const ferry_nodes* cluster = mode == "ferry-trusted" ? trusted.get() : checked.get();
    if (cluster && !ferry::bench::wait_for_optimized_code(cluster->rt, std::chrono::seconds(60)))
      progress(o, fmt::format("warm-up ({}): the nodes did not finish optimizing the chase within 60 s", mode));
  }
  std::map<std::string, std::map<std::uint32_t, std::vector<double>>> batches;
  const options batch_options = [&] {
    options b = o;
    b.seconds_per_case = o.seconds_per_case / o.rounds;
    return b;
  }();
  for (int round = 0; round < o.rounds; ++round) {
    progress(o, fmt::format("round {} of {} ({} over {}): depths {}", round + 1, o.rounds, fmt::join(modes, ","), o.tls,
                            fmt::join(o.depths, ",")));
    for (std::uint32_t d : o.depths) {
      const auto& [starts, expect] = cases[d];
      const std::vector<std::uint64_t> round_starts(starts.begin() + round * per_batch,
                                                    starts.begin() + (round + 1) * per_batch);
      const std::vector<std::uint64_t> round_expect(expect.begin() + round * per_batch,
                                                    expect.begin() + (round + 1) * per_batch);
      ferry::bench::in_rotating_order(static_cast<std::size_t>(round), modes.size(), [&](std::size_t m) {
        const std::string& mode = modes[m];
        park(!raw_mode(mode));
        // Warm the path: the processes this mode wakes after another's batch.
        one(mode, round_starts[0], d);
        const figure f = measure(batch_options, round_starts, round_expect,
                                 [&](std::uint64_t s) { return one(mode, s, d); }, out.wrong);
        batches[mode][d].push_back(f.us_per_chase);
        out.by_mode[mode][d].chases += f.chases;
        out.chases += static_cast<std::uint64_t>(f.chases);
      });
    }
  }
  for (auto& [mode, by_depth] : batches)
    for (auto& [d, us] : by_depth) out.by_mode[mode][d].us_per_chase = median(us);
  out.rounds = std::move(batches);
  if (raw) {
    if (auto s = raw->stop(); !s) throw ferry::error(s.error());
  }
  return 0;
}

/// `ferry bench ifunc`: the ifunc chase (the "ferry" column: ferry's compat
/// library) against each other mode of the same run.
// The parameters block of --json (both reports).
ferry::bench::parameters run_parameters(const options& o) {
  ferry::bench::parameters p;
  p.add("servers", o.servers)
      .add("log2_entries", o.log2_entries)
      .add("depths", fmt::format("{}", fmt::join(o.depths, ",")))
      .add("chases", o.chases)
      .add("seconds_per_case", o.seconds_per_case)
      .add("rounds", o.rounds)
      .add("tls", o.tls)
      .add("modes", fmt::format("{}", fmt::join(o.modes, ",")))
      .add("seed", o.seed)
      .add("preload", o.preload);
  return p;
}

/// The lowest and highest of the rounds' ratios, `mode`'s time over
/// `baseline`'s at depth `d` (each round ran both back to back).
std::pair<double, double> rounds_range(const results& r, const std::string& baseline, const std::string& mode,
                                       std::uint32_t d) {
  return ferry::bench::paired_ratio_range(r.rounds.at(baseline).at(d), r.rounds.at(mode).at(d));
}

void report_ifunc(const options& o, const results& r) {
  std::vector<ferry::bench::row> rows;
  const std::string where = fmt::format("{} servers, {}", o.servers, o.tls);
  const auto it = r.by_mode.find("ifunc");
  if (it != r.by_mode.end()) {
    const auto& f = it->second;
    if (r.by_mode.count("am"))
      rows.push_back({fmt::format("first ifunc chase (code travels along, depth {}) vs warm am depth {} ({})", o.servers,
                                  o.depths.front(), where),
                      r.by_mode.at("am").begin()->second.us_per_chase, r.ifunc_cold_us, "us"});
    for (const char* base : {"am", "get", "ferry"}) {
      if (!r.by_mode.count(base)) continue;
      for (const auto& [d, b] : r.by_mode.at(base))
        rows.push_back({fmt::format("{}, ifunc vs {} ({})",
                                    d == 1 ? std::string("round trip (depth-1 chase)") : fmt::format("depth {} chase", d),
                                    std::string_view(base) == "ferry" ? "ferry forward" : base, where),
                        b.us_per_chase, f.at(d).us_per_chase, "us", rounds_range(r, base, "ifunc", d)});
    }
  }
  // <ferry/ifunc.h> on the ferry nodes against ferry's forwarded call, same processes.
  if (r.by_mode.count("ifunc-nodes") && r.by_mode.count("ferry")) {
    rows.push_back({fmt::format("first <ferry/ifunc.h> chase (code travels along, depth {}) vs first ferry chase "
                                "(depth 1) ({})",
                                o.servers, where),
                    r.cold_us, r.nodes_cold_us, "us"});
    const auto& f = r.by_mode.at("ifunc-nodes");
    for (const auto& [d, b] : r.by_mode.at("ferry"))
      rows.push_back({fmt::format("{}, <ferry/ifunc.h> on nodes vs ferry forward ({})",
                                  d == 1 ? std::string("round trip (depth-1 chase)") : fmt::format("depth {} chase", d),
                                  where),
                      b.us_per_chase, f.at(d).us_per_chase, "us", rounds_range(r, "ferry", "ifunc-nodes", d)});
  }
  if (!rows.empty())
    ferry::bench::print_rows(rows, o.json, "baseline",
                             run_parameters(o));
  if (!o.json) fmt::print("{} chases, {} wrong endpoints\n", r.chases, r.wrong);
}

void report(const options& o, const results& r) {
  if (o.report == "ifunc") return report_ifunc(o, r);
  std::vector<ferry::bench::row> rows;
  const auto& f = r.by_mode.count("ferry") ? r.by_mode.at("ferry") : std::map<std::uint32_t, figure>{};
  const std::string where = fmt::format("{} servers, {}", o.servers, o.tls);
  if (r.by_mode.count("am") && !f.empty())
    rows.push_back({o.preload ? fmt::format("first ferry chase after rt.preload on every node (1 hop) vs warm am ({})", where)
                              : fmt::format("first ferry chase (ship+JIT+1 hop) vs warm am ({})", where),
                    r.by_mode.at("am").begin()->second.us_per_chase, r.cold_us, "us"});
  for (const char* base : {"am", "get", "ferry-trusted"}) {
    if (!r.by_mode.count(base) || f.empty()) continue;
    const std::string_view vs = std::string_view(base) == "ferry-trusted" ? "trusted nodes (cost of bounds checks and fuel)" : base;
    for (const auto& [d, b] : r.by_mode.at(base))
      rows.push_back({fmt::format("depth {} chase, ferry vs {} ({})", d, vs, where), b.us_per_chase,
                      f.at(d).us_per_chase, "us", rounds_range(r, base, "ferry", d)});
  }
  if (!rows.empty())
    ferry::bench::print_rows(rows, o.json, "baseline",
                             run_parameters(o));
  if (o.json) return;
  fmt::print("\n{:>6} {:>14} {:>14} {:>14} {:>16}   (chases/s)\n", "depth", "ferry", "am", "get", "ferry-trusted");
  for (std::uint32_t d : o.depths) {
    auto rate = [&](const char* m) {
      auto it = r.by_mode.find(m);
      return it == r.by_mode.end() ? std::string("-") : fmt::format("{:.0f}", 1e6 / it->second.at(d).us_per_chase);
    };
    fmt::print("{:>6} {:>14} {:>14} {:>14} {:>16}\n", d, rate("ferry"), rate("am"), rate("get"),
               rate("ferry-trusted"));
  }
  if (!f.empty() && r.by_mode.count("am") && r.by_mode.count("get")) {
    // Where a target is missed, and (for the gets) how far the pre-deployed
    // handler itself gets on the same processes: a ceiling for shipped code.
    const auto& am = r.by_mode.at("am");
    const auto& get = r.by_mode.at("get");
    std::vector<std::uint32_t> below_am, below_get;
    std::vector<double> handler_vs_get;  // at each depth >= 64
    for (std::uint32_t d : o.depths) {
      if (am.at(d).us_per_chase / f.at(d).us_per_chase < 0.9) below_am.push_back(d);
      if (d < 64) continue;
      if (get.at(d).us_per_chase / f.at(d).us_per_chase < 3) below_get.push_back(d);
      handler_vs_get.push_back(get.at(d).us_per_chase / am.at(d).us_per_chase);
    }
    // A miss names its depth and the rounds' own rate ratios there: how
    // close the rounds came (each ran ferry and the baseline back to back).
    auto verdict = [&](const std::vector<std::uint32_t>& missed, const std::string& base) {
      if (missed.empty()) return std::string("met");
      std::vector<std::string> at;
      for (std::uint32_t d : missed) {
        const auto [lo, hi] = rounds_range(r, base, "ferry", d);
        at.push_back(fmt::format("{} (rounds {:.2f}-{:.2f}x)", d, 1 / hi, 1 / lo));
      }
      return fmt::format("missed at depth {}", fmt::join(at, ", "));
    };
    std::string handler;
    if (!below_get.empty()) {  // so a depth >= 64 was measured
      const auto [lo, hi] = std::minmax_element(handler_vs_get.begin(), handler_vs_get.end());
      handler = fmt::format("; the am handler: {:.1f}-{:.1f}x get", *lo, *hi);
    }
    fmt::print("targets: chases/s >= 0.9x am at every depth ({}); >= 3x get at depth >= 64 ({}{}); first chase <= 1.5 ms "
               "({})\n",
               verdict(below_am, "am"), verdict(below_get, "get"), handler,
               o.preload ? "not measured: --preload" : r.cold_us <= 1500 ? "met" : "missed");
  }
  fmt::print("{} chases, {} wrong endpoints\n", r.chases, r.wrong);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ferry-pointer-chase: follow next = table[next] through a table split over S server processes,\n"
               "in several modes in one run: ferry (ship the code, forward across shards), am (a bare-UCX handler\n"
               "compiled into the servers ahead of time), get (the client chases with one-sided UCX gets), and on\n"
               "request ferry-trusted, ifunc and ifunc-nodes (--modes). Every endpoint is checked; the exit\n"
               "status is 1 if any is wrong."};
  app.name("ferry-pointer-chase");
  options o;
  app.add_option("-s,--servers", o.servers, "Server processes (shards)")->check(CLI::Range(1u, chase_table::kMaxShards));
  app.add_option("-k,--log2-entries", o.log2_entries, "Table of 2^k 64-bit entries")->check(CLI::Range(4u, 26u));
  app.add_option("--depths", o.depths, "Chase depths, comma-separated (1..1000000)")
      ->delimiter(',')
      ->check(CLI::Range(1u, 1000000u));
  app.add_option("--chases", o.chases, "Distinct chases (starts) per depth and mode, split over the rounds; each batch repeats its starts until its share of the time budget is spent")
      ->check(CLI::Range(3, 1000000));
  app.add_option("--seconds-per-case", o.seconds_per_case, "Time budget per depth and mode (all rounds)")
      ->check(CLI::Range(0.01, 600.0));
  app.add_option("--rounds", o.rounds,
                 "Rounds: each runs every mode at every depth (chases and time budget split evenly), the modes' order "
                 "rotating; a figure is the median of its rounds")
      ->check(CLI::Range(1, 101));
  app.add_option("--tls", o.tls, "UCX transport between the processes")->check(CLI::IsMember({"shm", "tcp"}));
  app.add_option("--modes", o.modes,
                 "Modes to run, comma-separated: ferry, am, get, ferry-trusted (ferry on nodes of the trusted policy, "
                 "`ferry node --unchecked --unmetered`: what bounds checks and fuel cost), ifunc, ifunc-nodes (<ferry/ifunc.h> on the ferry "
                 "nodes; needs ferry) (default with --report ifunc: ifunc,am,get,ferry,ifunc-nodes)")
      ->delimiter(',')
      ->check(CLI::IsMember({"ferry", "am", "get", "ferry-trusted", "ifunc", "ifunc-nodes"}));
  app.add_option("--report", o.report, "Rows to print: chase (ferry vs am, get) or ifunc (the UCX ifunc chase vs "
                                       "am, get, ferry; `ferry bench ifunc`)")
      ->check(CLI::IsMember({"chase", "ifunc"}));
  app.add_option("--seed", o.seed, "Seed of the permutation and of the chase starts");
  app.add_flag("--json", o.json, "Print JSON: the parameters and a list of {name, baseline, ferry, ratio, unit}");
  app.add_flag("--preload", o.preload,
               "Ship and compile the chase on every ferry node (rt.preload) before the first chase, which then "
               "measures a call of resident code (the cold first chase is not measured)");
  std::string serve_dir;
  std::uint32_t serve_index = 0;
  bool node = false, trusted_node = false;
  auto* srv = app.add_subcommand("serve", "a server (started by the client)")->group("");  // hidden
  srv->add_option("--dir", serve_dir)->required();
  srv->add_option("--index", serve_index)->required();
  srv->add_option("--servers", o.servers);
  srv->add_option("--log2-entries", o.log2_entries);
  srv->add_option("--seed", o.seed);
  srv->add_option("--tls", o.tls);
  srv->add_flag("--node", node);
  srv->add_flag("--trusted-node", trusted_node);
  bool serve_ifunc = false;
  srv->add_flag("--ifunc", serve_ifunc);
  for (auto* opt : app.get_options()) opt->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  ::setenv("UCX_NET_DEVICES", "lo", 0);  // one host: loopback only unless told otherwise
  if (srv->parsed()) {
    if (serve_ifunc) o.modes.push_back("ifunc");
    return serve(serve_dir, o, serve_index,
                 trusted_node ? server_role::trusted_node : node ? server_role::node : server_role::raw);
  }

  if (o.report == "ifunc" && app.count("--modes") == 0) o.modes = {"ifunc", "am", "get", "ferry", "ifunc-nodes"};
  if (has_mode(o, "ifunc-nodes") && !has_mode(o, "ferry")) {
    fmt::print(stderr, "ferry-pointer-chase: --modes: ifunc-nodes needs ferry (its baseline; the ferry mode starts "
                       "the nodes)\n");
    return 2;
  }

  int rc = 0;
  try {
    ferry::bench::scratch_servers cluster("ferry-chase");  // stopped and removed when the run ends
    const fs::path& dir = cluster.dir();
    ferry::cluster::rendezvous(dir).init(o.servers).value();
    if (has_mode(o, "ferry-trusted")) {
      fs::create_directory(trusted_dir(dir));
      ferry::cluster::rendezvous(trusted_dir(dir)).init(o.servers).value();
    }
    for (std::uint32_t s = 0; s < o.servers; ++s) {
      if (raw_phase(o)) cluster.start(server_argv(dir, o, s, server_role::raw));
      if (has_mode(o, "ferry")) cluster.start(server_argv(dir, o, s, server_role::node));
      if (has_mode(o, "ferry-trusted")) cluster.start(server_argv(dir, o, s, server_role::trusted_node));
    }
    results r;
    run(o, dir, r);
    report(o, r);
    rc = r.wrong == 0 ? 0 : 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "ferry-pointer-chase: {}\n", e.what());
    rc = 1;
  }
  return rc;
}
