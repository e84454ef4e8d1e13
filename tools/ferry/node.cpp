// `ferry node`: run one data node until shutdown (SIGTERM/SIGINT or a
// shutdown frame).
#include <signal.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <thread>

#include <fmt/format.h>

#include "cluster/bootstrap.hpp"
#include "commands.hpp"
#include "node/node.hpp"

namespace ferry::cli {

namespace {

struct node_args {
  std::uint32_t index = 0;
  std::string rendezvous;
  std::string transport = "ucx";
  std::string tls;
  std::string store;
  std::string kind = "host";
  unsigned executors = 2;
  std::string jit_cache;
  bool untrusted = false;
  int join_timeout_ms = 20000;
};

int run_node(const node_args& a) {
  // Block termination signals in every thread; one thread waits for them.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

  cluster::rendezvous rv(a.rendezvous);
  auto n_nodes = rv.size(std::chrono::milliseconds(a.join_timeout_ms));
  if (!n_nodes) {
    fmt::print(stderr, "ferry node: {}\n", n_nodes.error().describe());
    return 1;
  }
  node::node_config cfg;
  cfg.index = a.index;
  cfg.nodes = *n_nodes;
  cfg.kind = a.kind == "dpu" ? FERRY_NODE_DPU : a.kind == "storage" ? FERRY_NODE_STORAGE : FERRY_NODE_HOST;
  cfg.member.transport = {a.transport, a.tls};
  cfg.store_dir = a.store;
  cfg.executors = a.executors;
  if (!a.jit_cache.empty()) cfg.jit.cache_dir = a.jit_cache;
  cfg.jit.trust = a.untrusted ? jit_trust::untrusted : jit_trust::trusted;
  auto n = node::node::create(cfg);
  if (!n) {
    fmt::print(stderr, "ferry node {}: {}\n", a.index, n.error().describe());
    return 1;
  }
  if (auto j = (*n)->join(rv, std::chrono::milliseconds(a.join_timeout_ms)); !j) {
    fmt::print(stderr, "ferry node {}: {}\n", a.index, j.error().describe());
    return 1;
  }
  std::thread([&sigs, raw = n->get()] {
    int sig = 0;
    sigwait(&sigs, &sig);
    raw->stop();
  }).detach();
  if (std::getenv("FERRY_VERBOSE"))
    fmt::print(stderr, "ferry node {}: serving ({} of {}, {}, {} store)\n", a.index, a.kind, *n_nodes, a.transport,
               a.store.empty() ? "memory" : a.store);
  (*n)->wait();
  return 0;
}

}  // namespace

void add_node_command(CLI::App& app) {
  auto a = std::make_shared<node_args>();
  auto* cmd = app.add_subcommand("node", "Run a data node: hold objects, JIT and run mobile code sent to them");
  cmd->add_option("-i,--index", a->index, "This node's index in the cluster (0-based)")->required();
  cmd->add_option("-r,--rendezvous", a->rendezvous, "Rendezvous directory shared by the cluster")
      ->required()
      ->envname("FERRY_RENDEZVOUS");
  cmd->add_option("-t,--transport", a->transport, "Transport: ucx or inproc")
      ->envname("FERRY_TRANSPORT")
      ->check(CLI::IsMember({"ucx", "inproc"}));
  cmd->add_option("--tls", a->tls, "UCX transports, e.g. shm or tcp (default: UCX_TLS or UCX's choice)")
      ->envname("FERRY_TLS");
  cmd->add_option("-s,--store", a->store, "Persistent object store directory (default: memory)");
  cmd->add_option("-k,--kind", a->kind, "Node kind reported to mobile code")
      ->check(CLI::IsMember({"host", "dpu", "storage"}));
  cmd->add_option("-e,--executors", a->executors, "Threads that run mobile code")->check(CLI::Range(1u, 256u));
  cmd->add_option("--jit-cache", a->jit_cache, "Compiled-code cache directory (default ~/.cache/ferry/jit)");
  cmd->add_flag("--untrusted", a->untrusted, "Compile code in a sandboxed helper process (peers not trusted)");
  cmd->add_option("--join-timeout-ms", a->join_timeout_ms, "How long to wait for the other nodes");
  cmd->callback([a] { set_exit_code(run_node(*a)); });
}

}  // namespace ferry::cli
