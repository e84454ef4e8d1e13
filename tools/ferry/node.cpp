// `ferry node`: run one data node until shutdown (SIGTERM/SIGINT or a
// shutdown frame).
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include <fmt/format.h>

#include "bootstrap/bootstrap.hpp"
#include "commands.hpp"
#include "node/node.hpp"

namespace ferry::cli {

namespace {

struct node_args {
  std::optional<std::uint32_t> index;
  std::string bootstrap;
  std::string rendezvous;
  std::string hosts;
  std::optional<std::uint32_t> nodes;
  std::string transport = "ucx";
  std::string tls;
  std::string provider;
  std::string store;
  std::uint64_t memory_limit = 0;
  std::string kind = "host";
  unsigned executors = 2;
  std::string jit_cache;
  std::uint64_t code_data_limit = jit_config{}.max_data_bytes;
  std::uint64_t code_memory_limit = jit_config{}.max_code_bytes;
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

  const std::string who = a.index ? fmt::format("ferry node {}", *a.index) : "ferry node";
  cluster::bootstrap_options bo;
  bo.mode = a.bootstrap;
  bo.rendezvous = a.rendezvous;
  bo.hosts = a.hosts;
  bo.index = a.index;
  bo.nodes = a.nodes;
  bo.timeout = std::chrono::milliseconds(a.join_timeout_ms);
  auto bs = cluster::open_bootstrap(cluster::bootstrap_role::node, bo);
  if (!bs) {
    fmt::print(stderr, "{}: {}\n", who, bs.error().describe());
    return 1;
  }
  node::node_config cfg;
  cfg.index = (*bs)->self();
  cfg.nodes = (*bs)->nodes();
  cfg.kind = a.kind == "dpu" ? FERRY_NODE_DPU : a.kind == "storage" ? FERRY_NODE_STORAGE : FERRY_NODE_HOST;
  cfg.member.transport = {.kind = a.transport, .tls = a.tls, .provider = a.provider};
  cfg.store_dir = a.store;
  cfg.memory_limit = a.memory_limit;
  cfg.executors = a.executors;
  if (!a.jit_cache.empty()) cfg.jit.cache_dir = a.jit_cache;
  cfg.jit.max_data_bytes = a.code_data_limit;
  cfg.jit.max_code_bytes = a.code_memory_limit;
  cfg.jit.trust = a.untrusted ? jit_trust::untrusted : jit_trust::trusted;
  auto n = node::node::create(cfg);
  if (!n) {
    fmt::print(stderr, "ferry node {}: {}\n", cfg.index, n.error().describe());
    return 1;
  }
  if (auto j = (*n)->join(**bs, std::chrono::milliseconds(a.join_timeout_ms)); !j) {
    fmt::print(stderr, "ferry node {}: {}\n", cfg.index, j.error().describe());
    return 1;
  }
  std::thread([&sigs, raw = n->get()] {
    int sig = 0;
    sigwait(&sigs, &sig);
    raw->stop();
  }).detach();
  // A job-scoped cluster (PMIx) ends when every client of the job has left:
  // then this thread stops the node the way a signal would.
  std::thread job_end;
  auto left = std::make_shared<std::atomic<bool>>(false);
  if ((*bs)->job_scoped())
    job_end = std::thread([b = bs->get(), left, index = cfg.index] {
      if (auto s = b->leave(); !s) fmt::print(stderr, "ferry node {}: {}\n", index, s.error().describe());
      *left = true;
      ::kill(::getpid(), SIGTERM);
    });
  if (std::getenv("FERRY_VERBOSE"))
    fmt::print(stderr, "ferry node {}: serving ({} of {}, {}, {} store, {})\n", cfg.index, a.kind, cfg.nodes,
               (*n)->transport_name(), a.store.empty() ? "memory" : a.store, (*bs)->describe());
  (*n)->wait();
  if (job_end.joinable()) {
    if (*left) {
      job_end.join();
    } else {  // a signal ended the node inside a running job: no PMIx_Finalize under a thread still in the fence
      job_end.detach();
      (void)bs->release();
    }
  }
  return 0;
}

}  // namespace

void add_node_command(CLI::App& app) {
  auto a = std::make_shared<node_args>();
  auto* cmd = app.add_subcommand("node", "Run a data node: hold objects, JIT and run mobile code sent to them");
  cmd->footer(
      "How the node finds its cluster (the first that applies):\n"
      "  --bootstrap MODE        rendezvous | hosts | pmix, if given\n"
      "  --rendezvous DIR        a directory shared by the cluster (what `ferry launch` uses):\n"
      "                            ferry node --index I --rendezvous DIR\n"
      "  --hosts LIST|FILE       a host list for several machines; entry I is node I's bootstrap port:\n"
      "                            ferry node --index I --hosts a:7000,b:7000,c:7000\n"
      "                          (programs join with FERRY_HOSTS=a:7000,b:7000,c:7000)\n"
      "  PMIx                    under mpirun/srun; node I is rank I, the program comes after the nodes:\n"
      "                            mpirun -np 3 ferry node : -np 1 PROGRAM\n"
      "                          the nodes stop when every program process has finished");
  cmd->add_option("-i,--index", a->index,
                  "This node's index in the cluster (0-based; required with --rendezvous and --hosts, the rank "
                  "under PMIx)");
  cmd->add_option("-b,--bootstrap", a->bootstrap, "How to find the cluster (default: see below)")
      ->envname("FERRY_BOOTSTRAP")
      ->check(CLI::IsMember({"rendezvous", "hosts", "pmix"}));
  cmd->add_option("-r,--rendezvous", a->rendezvous, "Rendezvous directory shared by the cluster")
      ->envname("FERRY_RENDEZVOUS");
  cmd->add_option("--hosts", a->hosts, "Host list: a file of HOST:PORT lines, or HOST:PORT,HOST:PORT,...")
      ->envname("FERRY_HOSTS");
  cmd->add_option("--nodes", a->nodes,
                  "PMIx: ranks 0..N-1 are data nodes (default: FERRY_NODES, else the job's first app)")
      ->check(CLI::Range(1u, 1u << 20));
  cmd->add_option("-t,--transport", a->transport,
                  "Transport: ucx (UCX active messages) or ofi (libfabric FI_EP_RDM); the whole cluster uses one "
                  "(docs/transports.md)")
      ->envname("FERRY_TRANSPORT")
      ->check(CLI::IsMember({"ucx", "ofi", "inproc"}))
      ->capture_default_str();
  cmd->add_option("--tls", a->tls, "UCX transports, e.g. shm or tcp (default: UCX_TLS or UCX's choice)")
      ->envname("FERRY_TLS");
  cmd->add_option("--provider", a->provider,
                  "libfabric provider with --transport ofi, e.g. shm, \"tcp;ofi_rxm\", net (default: FI_PROVIDER "
                  "or libfabric's first RDM provider)")
      ->envname("FERRY_OFI_PROVIDER");
  cmd->add_option("-s,--store", a->store, "Persistent object store directory (default: memory)");
  cmd->add_option("--memory-limit", a->memory_limit,
                  "Most bytes of objects this node holds, e.g. 512MiB, 8GiB; more fails with out_of_memory "
                  "(default: physical memory for an in-memory store, none for --store)")
      ->transform(CLI::AsSizeValue(false));
  cmd->add_option("-k,--kind", a->kind, "Node kind reported to mobile code")
      ->check(CLI::IsMember({"host", "dpu", "storage"}));
  cmd->add_option("-e,--executors", a->executors, "Threads that run mobile code")->check(CLI::Range(1u, 256u));
  cmd->add_option("--jit-cache", a->jit_cache, "Compiled-code cache directory (default ~/.cache/ferry/jit)");
  cmd->add_option("--code-data-limit", a->code_data_limit,
                  "Most bytes of global variables (tables, constants) one code object may bring; more fails "
                  "with too_large before compiling (0: no limit)")
      ->transform(CLI::AsSizeValue(false))
      ->capture_default_str();
  cmd->add_option("--code-memory-limit", a->code_memory_limit,
                  "Most bytes of compiled code linked at once; a load past it fails with out_of_memory (0: no limit)")
      ->transform(CLI::AsSizeValue(false))
      ->capture_default_str();
  cmd->add_flag("--untrusted", a->untrusted, "Compile code in a sandboxed helper process (peers not trusted)");
  cmd->add_option("--join-timeout-ms", a->join_timeout_ms, "How long to wait for the other nodes");
  cmd->callback([a] { set_exit_code(run_node(*a)); });
}

}  // namespace ferry::cli
