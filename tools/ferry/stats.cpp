// `ferry stats [--json]`: what the nodes of a running cluster report with
// their heartbeats — load (the inputs of automatic placement) and how many
// calls placement sent each of them to run on pulled data. Joins the cluster
// as a client, the way any program does (FERRY_RENDEZVOUS, FERRY_HOSTS,
// PMIx), listens to one round of heartbeats, prints, leaves.
#include <chrono>
#include <thread>

#include <fmt/format.h>

#include <ferry/runtime.hpp>

#include "commands.hpp"

namespace ferry::cli {
namespace {

const char* kind_name(std::uint32_t kind) {
  switch (kind) {
    case FERRY_NODE_HOST: return "host";
    case FERRY_NODE_DPU: return "dpu";
    case FERRY_NODE_STORAGE: return "storage";
  }
  return "?";
}

// Wait until every live node has reported its load once (at most `limit`).
std::vector<node_info> reported(runtime& rt, std::chrono::milliseconds limit) {
  const auto until = std::chrono::steady_clock::now() + limit;
  for (;;) {
    auto nodes = rt.nodes();
    bool all = true;
    for (const auto& n : nodes) all = all && (!n.alive || n.load.executors > 0);
    if (all || std::chrono::steady_clock::now() > until) return nodes;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void print(const std::vector<node_info>& nodes, bool json) {
  if (json) {
    fmt::print("[\n");
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      const auto& n = nodes[i];
      const auto& l = n.load;
      fmt::print("  {{\"node\": {}, \"kind\": \"{}\", \"alive\": {}, \"transport\": \"{}\", \"queued\": {}, "
                 "\"running\": {}, \"executors\": {}, \"call_us\": {}, \"load\": {:.3f}, \"calls\": {}, "
                 "\"pulled_calls\": {}, \"pulled_bytes\": {}, \"recompiling\": {}}}{}\n",
                 n.id, kind_name(n.kind), n.alive, n.transport, l.queued, l.running, l.executors, l.call_us,
                 l.load_permille / 1000.0, l.calls, l.pulled_calls, l.pulled_bytes, l.recompiling,
                 i + 1 < nodes.size() ? "," : "");
    }
    fmt::print("]\n");
    return;
  }
  fmt::print("{:>4} {:<7} {:<5} {:<9} {:>6} {:>7} {:>9} {:>8} {:>6} {:>9} {:>7} {:>12} {:>11}\n", "node", "kind",
             "alive", "transport", "queued", "running", "executors", "call_us", "load", "calls", "pulled",
             "pulled_bytes", "recompiling");
  for (const auto& n : nodes) {
    const auto& l = n.load;
    fmt::print("{:>4} {:<7} {:<5} {:<9} {:>6} {:>7} {:>9} {:>8} {:>6.2f} {:>9} {:>7} {:>12} {:>11}\n", n.id,
               kind_name(n.kind), n.alive ? "yes" : "no", n.transport, l.queued, l.running, l.executors, l.call_us,
               l.load_permille / 1000.0, l.calls, l.pulled_calls, l.pulled_bytes, l.recompiling);
  }
}

}  // namespace

void add_stats_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("stats",
                                 "Load and placement figures the nodes of a running cluster report "
                                 "(joins it like a program: FERRY_RENDEZVOUS, FERRY_HOSTS or PMIx)");
  auto json = std::make_shared<bool>(false);
  auto wait_ms = std::make_shared<unsigned>(1000);
  cmd->add_flag("--json", *json, "Print a JSON list, one object per node");
  cmd->add_option("--wait-ms", *wait_ms, "Wait at most this long for every node's heartbeat")->capture_default_str();
  cmd->callback([json, wait_ms] {
    try {
      runtime rt(runtime_options::from_environment());
      print(reported(rt, std::chrono::milliseconds(*wait_ms)), *json);
    } catch (const error& e) {
      fmt::print(stderr, "ferry stats: {}\n", e.status().describe());
      set_exit_code(1);
    }
  });
}

}  // namespace ferry::cli
