// `ferry launch -n N -- PROGRAM ARGS`: a local cluster of N nodes for the
// duration of one program, torn down whatever happens to the program.
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

#include <fmt/format.h>

#include "bootstrap/rendezvous.hpp"
#include "commands.hpp"
#include "core/posix_io.hpp"

namespace ferry::cli {

namespace {

struct launch_args {
  std::uint32_t nodes = 2;
  std::uint32_t dpus = 0;
  std::uint32_t storage = 0;
  std::string transport = "ucx";
  std::string tls;
  std::string store_root;
  unsigned executors = 2;
  int start_timeout_ms = 20000;
  std::vector<std::string> program;
};

// fork + exec with the given extra environment; the child dies with us.
pid_t spawn(const std::vector<std::string>& argv, const std::vector<std::pair<std::string, std::string>>& env) {
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid != 0) return pid;
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) _exit(127);  // the launcher died before prctl
  for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  ::execvp(args[0], args.data());
  fmt::print(stderr, "ferry launch: cannot run {}: {}\n", argv[0], std::strerror(errno));
  _exit(127);
}

int exit_status(int wstatus) {
  if (WIFEXITED(wstatus)) return WEXITSTATUS(wstatus);
  if (WIFSIGNALED(wstatus)) return 128 + WTERMSIG(wstatus);
  return 1;
}

void stop_all(std::vector<pid_t>& pids) {
  for (pid_t p : pids)
    if (p > 0) ::kill(p, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  for (pid_t& p : pids) {
    while (p > 0) {
      if (::waitpid(p, nullptr, WNOHANG) == p) {
        p = 0;
        break;
      }
      if (std::chrono::steady_clock::now() > deadline) {
        ::kill(p, SIGKILL);
        ::waitpid(p, nullptr, 0);
        p = 0;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
}

int run_launch(const launch_args& a) {
  if (a.program.empty()) {
    fmt::print(stderr, "ferry launch: no program given (usage: ferry launch -n N -- PROGRAM ARGS)\n");
    return 2;
  }
  if (a.dpus + a.storage > a.nodes) {
    fmt::print(stderr, "ferry launch: --dpu {} + --storage {} exceed -n {}\n", a.dpus, a.storage, a.nodes);
    return 2;
  }
  std::string tmpl = (std::filesystem::temp_directory_path() / "ferry-cluster-XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) {
    fmt::print(stderr, "ferry launch: cannot create a rendezvous directory: {}\n", std::strerror(errno));
    return 1;
  }
  const std::filesystem::path dir = tmpl;
  cluster::rendezvous rv(dir);
  if (auto s = rv.init(a.nodes); !s) {
    fmt::print(stderr, "ferry launch: {}\n", s.error().describe());
    return 1;
  }

  // A launched cluster is one host: unless told otherwise, UCX uses loopback
  // only (by default it would also open a lane on every NIC).
  ::setenv("UCX_NET_DEVICES", "lo", 0);

  // SIGINT/SIGTERM reach the whole process group (program and nodes); the
  // launcher itself outlives them to tear down.
  signal(SIGINT, SIG_IGN);
  signal(SIGTERM, SIG_IGN);

  const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  std::vector<pid_t> nodes;
  for (std::uint32_t i = 0; i < a.nodes; ++i) {
    // The last --storage nodes are storage nodes, the --dpu before them DPUs.
    const char* kind = i >= a.nodes - a.storage ? "storage" : i >= a.nodes - a.storage - a.dpus ? "dpu" : "host";
    std::vector<std::string> argv{self, "node", "--index", std::to_string(i), "--rendezvous", dir.string(),
                                  "--transport", a.transport, "--kind", kind, "--executors",
                                  std::to_string(a.executors)};
    if (!a.tls.empty()) argv.insert(argv.end(), {"--tls", a.tls});
    if (!a.store_root.empty())
      argv.insert(argv.end(), {"--store", (std::filesystem::path(a.store_root) / fmt::format("node{}", i)).string()});
    nodes.push_back(spawn(argv, {}));
  }
  // Wait for every node's address (a node that dies early fails the launch).
  auto ready = rv.node_addresses(a.nodes, std::chrono::milliseconds(a.start_timeout_ms));
  int rc;
  if (!ready) {
    fmt::print(stderr, "ferry launch: {}\n", ready.error().describe());
    rc = 1;
  } else {
    std::vector<std::pair<std::string, std::string>> env{{"FERRY_RENDEZVOUS", dir.string()},
                                                         {"FERRY_TRANSPORT", a.transport}};
    if (!a.tls.empty()) env.emplace_back("FERRY_TLS", a.tls);
    const pid_t program = spawn(a.program, env);
    const auto waited = core::wait_child(program);
    rc = waited ? exit_status(*waited) : 1;
  }
  stop_all(nodes);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return rc;
}

}  // namespace

void add_launch_command(CLI::App& app) {
  auto a = std::make_shared<launch_args>();
  auto* cmd = app.add_subcommand("launch",
                                 "Start N local nodes, run PROGRAM as a client of them, tear everything down.\n"
                                 "Exits with PROGRAM's exit status (128+signal if it was killed).");
  cmd->footer(
      "The nodes and PROGRAM meet in a rendezvous directory (FERRY_RENDEZVOUS is set for PROGRAM).\n"
      "Other ways to run a cluster, with the same binaries (see `ferry node --help`):\n"
      "  several machines:  ferry node --index I --hosts a:7000,b:7000   and   FERRY_HOSTS=a:7000,b:7000 PROGRAM\n"
      "  mpirun / srun:     mpirun -np N ferry node : -np 1 PROGRAM   (PMIx)");
  cmd->add_option("-n,--nodes", a->nodes, "Number of data nodes")->check(CLI::Range(1u, 1024u));
  cmd->add_option("--dpu", a->dpus, "How many of the nodes are DPU/SmartNIC nodes");
  cmd->add_option("--storage", a->storage, "How many of the nodes are storage nodes");
  cmd->add_option("-t,--transport", a->transport, "Transport: ucx or inproc")->check(CLI::IsMember({"ucx"}));
  cmd->add_option("--tls", a->tls, "UCX transports: shm, tcp, ... (default: UCX_TLS or UCX's choice)");
  cmd->add_option("--store-root", a->store_root, "Give node i a persistent store in DIR/node<i>");
  cmd->add_option("-e,--executors", a->executors, "Threads per node that run mobile code");
  cmd->add_option("--start-timeout-ms", a->start_timeout_ms, "How long nodes may take to start");
  cmd->add_option("program", a->program, "PROGRAM and its arguments (after --)")->required();
  cmd->callback([a] { set_exit_code(run_launch(*a)); });
}

}  // namespace ferry::cli
