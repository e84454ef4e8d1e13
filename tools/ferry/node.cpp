// `ferry node`: run one data node until shutdown (SIGTERM/SIGINT or a
// shutdown frame).
#include <malloc.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include <fmt/format.h>

#include <ferry/code_signing.hpp>

#include "bootstrap/bootstrap.hpp"
#include "commands.hpp"
#include "node/node.hpp"

namespace ferry::cli {

namespace {

// The node's counters as `name value` lines (node::node_stats).
std::string format_stats(const node::node_stats& s) {
  return fmt::format(
      "calls_inline {}\ncalls_on_executor {}\nlate_answers {}\nowner_entries {}\nmoved_out {}\nbad_frames {}\n"
      "dropped_frames {}\nrefused_frames {}\nifunc_contexts {}\ncode_loads {}\ntier_ups {}\nrecompiling {}\n"
      "jit_failures {}\nputs_in_place {}\nimage_parts {}\nimages_assembling {}\nobjects_moving {}\nowner_lookups {}\n"
      "ifunc_warmed_up {}\n",
      s.calls_inline, s.calls_on_executor, s.late_answers, s.owner_entries, s.moved_out, s.bad_frames,
      s.dropped_frames, s.refused_frames, s.ifunc_contexts, s.code_loads, s.tier_ups, s.recompiling, s.jit_failures,
      s.puts_in_place, s.image_parts, s.images_assembling, s.objects_moving, s.owner_lookups,
      s.ifunc_warmed_up);
}

// Rewrite `path` (atomically: a temporary file renamed over it) with the
// node's counters whenever they changed, every 50 ms, until `stop`.
void write_stats_until(const node::node& n, const std::filesystem::path& path, const std::atomic<bool>& stop) {
  std::string last;
  const auto tmp = path.string() + ".tmp";
  while (!stop.load()) {
    auto now = format_stats(n.stats());
    if (now != last) {
      if (FILE* f = std::fopen(tmp.c_str(), "w")) {
        const bool ok = std::fwrite(now.data(), 1, now.size(), f) == now.size();
        if (std::fclose(f) == 0 && ok && std::rename(tmp.c_str(), path.c_str()) == 0) last = std::move(now);
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

struct node_args {
  std::optional<std::uint32_t> index;
  std::string bootstrap;
  std::string rendezvous;
  std::string hosts;
  std::optional<std::uint32_t> nodes;
  std::string transport = "ucx";
  std::string tls;
  std::string directory = "home";
  std::string provider;
  std::string store;
  std::uint64_t memory_limit = 0;
  std::string kind = "host";
  std::string cpu;
  std::string cores;
  std::string device;
  std::uint64_t link_latency_us = 0;
  std::uint64_t link_bandwidth = 0;
  unsigned executors = 2;
  std::uint64_t inline_budget_us = static_cast<std::uint64_t>(node::node_config{}.inline_budget.count());
  std::string jit_cache;
  std::uint64_t code_data_limit = jit_config{}.max_data_bytes;
  std::uint64_t code_memory_limit = jit_config{}.max_code_bytes;
  bool untrusted = false;
  std::string trust_keys;
  std::uint64_t fuel = node::node_config{}.fuel_per_call;
  bool unmetered = false;
  bool unchecked = false;
  int join_timeout_ms = 20000;
  std::string stats_file;
};

// "0-2,5" -> {0,1,2,5}; false on anything else.
bool parse_cpu_list(const std::string& text, cpu_set_t& set) {
  CPU_ZERO(&set);
  std::size_t i = 0;
  auto number = [&](unsigned& out) {
    const std::size_t start = i;
    out = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9' && out < CPU_SETSIZE)
      out = out * 10 + static_cast<unsigned>(text[i++] - '0');
    return i > start && out < CPU_SETSIZE;
  };
  while (i < text.size()) {
    unsigned lo = 0, hi = 0;
    if (!number(lo)) return false;
    hi = lo;
    if (i < text.size() && text[i] == '-' && (++i, !number(hi) || hi < lo)) return false;
    for (unsigned c = lo; c <= hi; ++c) CPU_SET(c, &set);
    if (i < text.size() && text[i++] != ',') return false;
  }
  return CPU_COUNT(&set) > 0;
}

// Before any thread starts: the node's allocations share one malloc arena,
// which grows 4 MiB at a time, so the first JIT compile of a mobile call
// reuses pages the start-up (and the JIT's warm-up) already touched. A fresh
// page costs about 15 µs in this VM; without this, the first chase's compile
// met ~167 of them (docs/jit.md, "Fresh pages are the other cost"). A warm call allocates
// nothing, so one arena costs it nothing. Blocks up to 32 MiB (glibc's
// largest mmap threshold) come from that arena too, and up to 64 MiB freed
// at its top stays there: the frames of bulk transfers (1 MiB chunks, handed
// from the network thread to an object thread and freed there) reuse warm
// memory instead of mapping fresh pages for each (docs/platform-notes.md,
// "Memory"). Whoever sets glibc.malloc.* tunables keeps them.
void keep_heap_warm() {
  if (const char* t = std::getenv("GLIBC_TUNABLES"); t && std::strstr(t, "glibc.malloc.")) return;
  ::mallopt(M_ARENA_MAX, 1);
  ::mallopt(M_TOP_PAD, 4 << 20);
  ::mallopt(M_MMAP_THRESHOLD, 32 << 20);
  ::mallopt(M_TRIM_THRESHOLD, 64 << 20);
}

int run_node(const node_args& a) {
  keep_heap_warm();
  if (!a.device.empty()) {  // a storage node: its store must live on that device
    struct stat dev{}, dir{};
    std::error_code ec;
    std::filesystem::create_directories(a.store, ec);
    if (a.store.empty() || ::stat(a.device.c_str(), &dev) != 0 || !S_ISBLK(dev.st_mode) ||
        ::stat(a.store.c_str(), &dir) != 0 || dir.st_dev != dev.st_rdev) {
      fmt::print(stderr, "ferry node: --device {} needs --store on a file system of that block device (got '{}')\n",
                 a.device, a.store);
      return 2;
    }
  }
  if (!a.cores.empty()) {  // before any thread starts: they all inherit it
    cpu_set_t set;
    if (!parse_cpu_list(a.cores, set)) {
      fmt::print(stderr, "ferry node: --cores '{}' is not a CPU list like 0 or 0-1,3\n", a.cores);
      return 2;
    }
    if (::sched_setaffinity(0, sizeof set, &set) != 0) {
      fmt::print(stderr, "ferry node: cannot run on CPUs {}: {}\n", a.cores, std::strerror(errno));
      return 1;
    }
  }
  // Block termination signals in every thread; one thread waits for them.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

  const std::string who = a.index ? fmt::format("ferry node {}", *a.index) : "ferry node";
  // Settings that cannot work are refused before joining anyone.
  std::vector<signing_public_key> trusted;
  if (a.untrusted && a.unmetered) {
    fmt::print(stderr, "{}: --unmetered is for trusted clusters: untrusted code must stay stoppable\n", who);
    return 1;
  }
  if (a.untrusted && a.unchecked) {
    fmt::print(stderr, "{}: --unchecked is for trusted clusters: untrusted code must stay bounds-checked\n", who);
    return 1;
  }
  if (a.untrusted && a.trust_keys.empty()) {
    fmt::print(stderr, "{}: --untrusted needs --trust-keys DIR: a node that takes code from peers it does not "
                       "trust runs only code signed by keys it does (ferry sign --help)\n", who);
    return 1;
  }
  if (!a.trust_keys.empty()) {
    auto keys = read_trusted_keys(a.trust_keys);
    if (!keys) {
      fmt::print(stderr, "{}: --trust-keys: {}\n", who, keys.error().describe());
      return 1;
    }
    trusted = std::move(*keys);
  }
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
  cfg.member.transport = {.kind = a.transport, .tls = a.tls, .provider = a.provider, .link = {}};
  cfg.member.transport.link.latency = std::chrono::microseconds(a.link_latency_us);
  cfg.member.transport.link.bytes_per_second = a.link_bandwidth;
  cfg.jit.target.cpu = a.cpu;
  cfg.directory = *ferry::directory::parse_scheme(a.directory);  // checked by the option
  cfg.store_dir = a.store;
  cfg.memory_limit = a.memory_limit;
  cfg.executors = a.executors;
  cfg.inline_budget = std::chrono::microseconds(a.inline_budget_us);
  // Test-only: crash at a step of the move protocol (node_config::crash_at).
  if (const char* step = std::getenv("FERRY_TEST_CRASH_AT")) cfg.crash_at = step;
  if (!a.jit_cache.empty()) cfg.jit.cache_dir = a.jit_cache;
  cfg.jit.max_data_bytes = a.code_data_limit;
  cfg.jit.max_code_bytes = a.code_memory_limit;
  cfg.jit.trust = a.untrusted ? jit_trust::untrusted : jit_trust::trusted;
  cfg.fuel_per_call = a.fuel;
  cfg.jit.meter = !a.unmetered;
  cfg.jit.bounds_checks = !a.unchecked;
  cfg.jit.trusted_signers = std::move(trusted);
  auto n = node::node::create(cfg);
  if (!n) {
    fmt::print(stderr, "ferry node {}: {}\n", cfg.index, n.error().describe());
    return 1;
  }
  auto joined = (*n)->join(**bs, std::chrono::milliseconds(a.join_timeout_ms));
  if (!joined) {
    fmt::print(stderr, "ferry node {}: {}\n", cfg.index, joined.error().describe());
    return 1;
  }
  for (const auto& [index, why] : *joined)
    fmt::print(stderr, "ferry node {}: node {} is down: its published address cannot be connected to ({}); serving "
                       "without it until it says hello\n", cfg.index, index, why.describe());
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
    fmt::print(stderr, "ferry node {}: serving ({} of {}, {} {}, {}, {} store, {})\n", cfg.index, a.kind, cfg.nodes,
               (*n)->triple(), (*n)->cpu(), (*n)->transport_name(),
               a.store.empty() ? "memory" : a.store + (a.device.empty() ? "" : " on " + a.device), (*bs)->describe());
  std::atomic<bool> stats_stop{false};
  std::thread stats_writer;
  if (!a.stats_file.empty())
    stats_writer = std::thread([&] { write_stats_until(**n, a.stats_file, stats_stop); });
  (*n)->wait();
  stats_stop = true;
  if (stats_writer.joinable()) stats_writer.join();
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
  cmd->add_option("--directory", a->directory,
                  "How owners are found: home (each object's home node knows its owner) or e2e (owner caches, "
                  "discovery by asking every node on a miss); the whole cluster must use the same")
      ->check(CLI::IsMember({"home", "e2e"}))
      ->envname("FERRY_DIRECTORY");
  cmd->add_option("--provider", a->provider,
                  "libfabric provider with --transport ofi, e.g. shm, \"tcp;ofi_rxm\", net (default: FI_PROVIDER "
                  "or libfabric's first RDM provider)")
      ->envname("FERRY_OFI_PROVIDER");
  cmd->add_option("-s,--store", a->store, "Persistent object store directory (default: memory)");
  cmd->add_option("--memory-limit", a->memory_limit,
                  "Most bytes of objects this node holds, e.g. 512MiB, 8GiB; more fails with out_of_memory "
                  "(default: physical memory for an in-memory store, none for --store)")
      ->transform(CLI::AsSizeValue(false));
  cmd->add_option("-k,--kind", a->kind,
                  "Node kind reported to mobile code and rt.nodes(); its resource profile is the options below "
                  "(docs/devices.md)")
      ->check(CLI::IsMember({"host", "dpu", "storage"}));
  cmd->add_option("--cpu", a->cpu,
                  "CPU to generate code for, e.g. cortex-a72 or a64fx (default: this host's, as LLVM detects it); "
                  "an aarch64 CPU named here brings exactly its own ISA extensions")
      ->envname("FERRY_NODE_CPU");
  cmd->add_option("--device", a->device,
                  "Storage node: the block device (e.g. a loop device) whose file system holds --store; checked "
                  "at start");
  cmd->add_option("--cores", a->cores, "Run on these CPUs only, e.g. 1 or 0-1,3 (default: all)");
  cmd->add_option("--link-latency-us", a->link_latency_us,
                  "Emulated link: one-way latency added to every frame this node sends or receives (ferry's own "
                  "delay line; default 0)");
  cmd->add_option("--link-bandwidth", a->link_bandwidth,
                  "Emulated link: bytes per second each way, e.g. 1GB or 125MB (default: no limit)")
      ->transform(CLI::AsSizeValue(false));
  cmd->add_option("-e,--executors", a->executors, "Threads that run mobile code")->check(CLI::Range(1u, 256u));
  cmd->add_option("--inline-budget-us", a->inline_budget_us,
                  "Calls whose code cannot block and whose last run took less than this many microseconds run on "
                  "the network thread, the others on an executor (a call in place delays the node's other frames "
                  "by its length; a hand-off costs two thread wake-ups; 0: every call on an executor)")
      ->check(CLI::Range(std::uint64_t{0}, std::uint64_t{60'000'000}))
      ->capture_default_str();
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
  cmd->add_flag("--untrusted", a->untrusted,
                "Compile code in a sandboxed helper process (peers not trusted); needs --trust-keys");
  cmd->add_option("--trust-keys", a->trust_keys,
                  "Run only code objects signed by a key whose .pub file is in DIR (ferry sign); unsigned, "
                  "foreign-signed or tampered code is refused before it is parsed")
      ->envname("FERRY_TRUST_KEYS");
  cmd->add_option("--fuel", a->fuel,
                  "Work one mobile call may do (function calls + loop iterations); past it the call fails with "
                  "fuel_exhausted (0: unlimited; the call's deadline still stops it)")
      ->capture_default_str();
  cmd->add_flag("--unmetered", a->unmetered,
                "Compile mobile code without fuel accounting (trusted clusters only): a little faster, but "
                "neither --fuel nor deadlines can stop a running call");
  cmd->add_flag("--unchecked", a->unchecked,
                "The trusted policy: compile mobile code without bounds checks (trusted clusters only): faster "
                "memory access, but a wild pointer can then corrupt this node's objects and heap")
      ->envname("FERRY_UNCHECKED");
  cmd->add_option("--join-timeout-ms", a->join_timeout_ms, "How long to wait for the other nodes");
  cmd->add_option("--stats-file", a->stats_file,
                  "Keep this node's counters in FILE (`name value` lines, rewritten every 50 ms while they "
                  "change): calls run, stray answers, bad, dropped and refused frames, puts written in place (docs/security.md)");
  cmd->callback([a] { set_exit_code(run_node(*a)); });
}

}  // namespace ferry::cli
