// `ferry launch -n N -- PROGRAM ARGS`: a local cluster of N nodes for the
// duration of one program, torn down whatever happens to the program.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "bootstrap/rendezvous.hpp"
#include "commands.hpp"
#include "core/posix_io.hpp"
#include "dpu.hpp"
#include "host_tools.hpp"
#include "storage.hpp"

namespace ferry::cli {

namespace {

struct launch_args {
  std::uint32_t nodes = 2;
  std::uint32_t dpus = 0;
  std::uint32_t storage = 0;
  std::string transport = "ucx";
  std::string tls;
  std::string provider;
  std::string store_root;
  unsigned executors = 2;
  std::optional<std::uint64_t> inline_budget_us;  // unset: the node's default
  bool untrusted = false;
  std::string trust_keys;
  int start_timeout_ms = 20000;
  std::vector<std::string> program;
  dpu_profile dpu;
  std::uint64_t storage_size = std::uint64_t{1} << 30;
  std::uint64_t storage_rate = 0;  // bytes per second each way on a storage node's device; 0: not throttled
};

// The aarch64 `ferry` for DPU nodes: --dpu-binary / FERRY_DPU_BINARY, else
// the cross build inside this build tree (build/aarch64/bin/ferry, made by
// `make build-aarch64`).
std::string find_dpu_binary(const std::string& given, const std::filesystem::path& self) {
  if (!given.empty()) return given;
  const auto guess = self.parent_path().parent_path() / "aarch64" / "bin" / "ferry";
  return std::filesystem::exists(guess) ? guess.string() : std::string{};
}

// fork + exec with the given extra environment; the child dies with us. If
// `output_fd` >= 0 it becomes the child's stdout and stderr.
pid_t spawn(const std::vector<std::string>& argv, const std::vector<std::pair<std::string, std::string>>& env,
            int output_fd = -1) {
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid != 0) return pid;
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) _exit(127);  // the launcher died before prctl
  if (output_fd >= 0 && (::dup2(output_fd, STDOUT_FILENO) < 0 || ::dup2(output_fd, STDERR_FILENO) < 0)) _exit(127);
  for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  ::execvp(args[0], args.data());
  fmt::print(stderr, "ferry launch: cannot run {}: {}\n", argv[0], std::strerror(errno));
  _exit(127);
}

// What the nodes print (stderr, and stdout, where UCX logs), through pipes:
// held back while the cluster starts (so a node that fails to start can be
// reported with what it said), then passed through to our stderr. Our
// stdout is PROGRAM's alone.
class node_stderr {
 public:
  static constexpr std::size_t kKeep = 16 * 1024;  // bytes kept per node while held back

  ~node_stderr() { finish(std::chrono::milliseconds(0)); }

  /// A pipe for the next node: returns its write end (close it after fork).
  int add() {
    int fds[2];
    std::lock_guard lock(mu_);
    if (::pipe2(fds, O_CLOEXEC) != 0) {  // no pipe: this node writes to our stderr directly
      out_.push_back({-1, {}, true});
      return -1;
    }
    out_.push_back({fds[0], {}, false});
    return fds[1];
  }
  void start() { relay_ = std::thread([this] { run(); }); }
  /// From now on pass output straight through, after what was held back.
  void pass_through() {
    std::lock_guard lock(mu_);
    for (auto& o : out_) {
      (void)core::write_all(STDERR_FILENO, std::as_bytes(std::span(o.held)));
      o.held.clear();
    }
    passing_ = true;
  }
  /// Wait up to `timeout` for node `i`'s pipe to close (it exited), then
  /// what it wrote while held back.
  std::string held(std::size_t i, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return out_[i].closed; });
    return out_[i].held;
  }
  /// Wait up to `timeout` for every pipe to close, then stop relaying.
  void finish(std::chrono::milliseconds timeout) {
    {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, timeout, [&] {
        for (const auto& o : out_)
          if (!o.closed) return false;
        return true;
      });
      stop_ = true;
    }
    if (relay_.joinable()) relay_.join();
    for (auto& o : out_)
      if (o.fd >= 0) ::close(std::exchange(o.fd, -1));
  }

 private:
  struct output {
    int fd;
    std::string held;
    bool closed;
  };

  void run() {
    std::vector<pollfd> fds;
    std::vector<std::size_t> which;
    char buf[4096];
    for (;;) {
      fds.clear();
      which.clear();
      {
        std::lock_guard lock(mu_);
        if (stop_) return;
        for (std::size_t i = 0; i < out_.size(); ++i)
          if (!out_[i].closed) {
            fds.push_back({out_[i].fd, POLLIN, 0});
            which.push_back(i);
          }
      }
      if (fds.empty()) {
        std::unique_lock lock(mu_);
        cv_.wait_for(lock, std::chrono::milliseconds(20), [&] { return stop_; });
        continue;
      }
      if (::poll(fds.data(), fds.size(), 20) <= 0) continue;
      for (std::size_t k = 0; k < fds.size(); ++k) {
        if (fds[k].revents == 0) continue;
        const ssize_t n = ::read(fds[k].fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        std::lock_guard lock(mu_);
        auto& o = out_[which[k]];
        if (n <= 0) {
          o.closed = true;
          cv_.notify_all();
        } else if (passing_) {
          (void)core::write_all(STDERR_FILENO, std::as_bytes(std::span(buf, static_cast<std::size_t>(n))));
        } else {
          o.held.append(buf, static_cast<std::size_t>(n));
          if (o.held.size() > kKeep) o.held.erase(0, o.held.size() - kKeep);
        }
      }
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<output> out_;
  bool passing_ = false;
  bool stop_ = false;
  std::thread relay_;
};

// "exited with status 1", "was killed by signal 9 (Killed)".
std::string describe_exit(int wstatus) {
  if (WIFEXITED(wstatus)) return fmt::format("exited with status {}", WEXITSTATUS(wstatus));
  if (WIFSIGNALED(wstatus))
    return fmt::format("was killed by signal {} ({})", WTERMSIG(wstatus), ::strsignal(WTERMSIG(wstatus)));
  return "stopped";
}

// What a node printed, indented under the launcher's report.
std::string indented(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  if (text.empty()) return "  (it printed nothing)\n";
  std::string out = "  ";
  for (char c : text) {
    out += c;
    if (c == '\n') out += "  ";
  }
  return out + "\n";
}

int exit_status(int wstatus) {
  if (WIFEXITED(wstatus)) return WEXITSTATUS(wstatus);
  if (WIFSIGNALED(wstatus)) return 128 + WTERMSIG(wstatus);
  return 1;
}

// SIGTERM, and SIGKILL after `grace`. A node still joining its cluster takes
// no signal until it has joined: when the cluster did not start, grace 0.
void stop_all(std::vector<pid_t>& pids, std::chrono::milliseconds grace = std::chrono::seconds(3)) {
  for (pid_t p : pids)
    if (p > 0) ::kill(p, grace.count() > 0 ? SIGTERM : SIGKILL);
  const auto deadline = std::chrono::steady_clock::now() + grace;
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
  if (a.untrusted && a.trust_keys.empty()) {  // every node would refuse to start; say so once, now
    fmt::print(stderr, "ferry launch: --untrusted needs --trust-keys DIR (the public keys whose signed code the "
                       "nodes run; ferry sign --help)\n");
    return 2;
  }
  if (a.dpus + a.storage > a.nodes) {
    fmt::print(stderr, "ferry launch: --dpu {} + --storage {} exceed -n {}\n", a.dpus, a.storage, a.nodes);
    return 2;
  }
  if (!a.store_root.empty()) {  // the nodes would each fail on it; say so once, now
    std::error_code ec;
    std::filesystem::create_directories(a.store_root, ec);
    if (ec || !std::filesystem::is_directory(a.store_root)) {
      fmt::print(stderr, "ferry launch: --store-root {} is not a directory{}\n", a.store_root,
                 ec ? fmt::format(" and cannot be created: {}", ec.message()) : "");
      return 2;
    }
  }
  const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  dpu_profile dpu_profile = a.dpu;
  std::string tls = a.tls;
  if (a.dpus > 0) {
    dpu_profile.binary = find_dpu_binary(a.dpu.binary, self);
    if (dpu_profile.binary.empty()) {
      fmt::print(stderr,
                 "ferry launch: --dpu needs the aarch64 build of ferry: `make build-aarch64` (build/aarch64/bin/ferry), "
                 "or --dpu-binary PATH / FERRY_DPU_BINARY\n");
      return 2;
    }
    if (!tls.empty() && tls != "tcp") {
      fmt::print(stderr, "ferry launch: DPU nodes are reached over their network link: --tls must be tcp, not {}\n",
                 tls);
      return 2;
    }
    tls = "tcp";
  }
  if (a.dpus > 0 || a.storage_rate > 0) sweep_stale_cgroups();
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

  // The DPUs' links exist before any node starts: host-side processes reach
  // each other and the DPUs through the host ends of those links.
  const std::uint32_t first_dpu = a.nodes - a.storage - a.dpus;
  std::vector<std::unique_ptr<dpu>> dpus;
  std::string host_devices;
  for (std::uint32_t k = 0; k < a.dpus; ++k) {
    dpus.push_back(std::make_unique<dpu>(k, dpu_profile));
    host_devices += (host_devices.empty() ? "" : ",") + dpus.back()->host_device();
  }
  if (!host_devices.empty()) ::setenv("UCX_NET_DEVICES", host_devices.c_str(), 1);
  // A launched cluster is one host: unless told otherwise, UCX uses loopback
  // only (by default it would also open a lane on every NIC), and so does
  // libfabric's tcp provider (by default it takes the first NIC).
  ::setenv("UCX_NET_DEVICES", "lo", 0);
  ::setenv("FI_TCP_IFACE", "lo", 0);

  // SIGINT/SIGTERM reach the whole process group (program and nodes); the
  // launcher itself outlives them to tear down.
  signal(SIGINT, SIG_IGN);
  signal(SIGTERM, SIG_IGN);

  // Storage nodes' devices, mounted outside the rendezvous directory (which
  // is removed recursively at the end: never with a device mounted in it).
  std::vector<std::unique_ptr<storage_device>> devices(a.nodes);
  status failed;
  std::string mounts;
  if (a.storage > 0) {
    storage_device::sweep_stale(std::filesystem::temp_directory_path());
    mounts = (std::filesystem::temp_directory_path() / fmt::format("ferry-storage-{}-XXXXXX", ::getpid())).string();
    if (!::mkdtemp(mounts.data()))
      failed = make_error(errc::io_error, fmt::format("cannot create {}: {}", mounts, std::strerror(errno)));
  }
  for (std::uint32_t i = a.nodes - a.storage; i < a.nodes && failed.ok(); ++i) {
    const auto image = (a.store_root.empty() ? dir : std::filesystem::path(a.store_root)) / fmt::format("node{}.img", i);
    auto d = storage_device::attach(image, a.storage_size, std::filesystem::path(mounts) / fmt::format("node{}", i));
    if (d && a.storage_rate > 0)
      if (auto t = (*d)->throttle(fmt::format("ferry-{}-storage{}", ::getpid(), i), a.storage_rate); !t) d = t.error();
    if (d) devices[i] = std::move(*d);
    else failed = make_error(d.code(), fmt::format("storage node {}: {}", i, d.error().message()));
  }
  node_stderr errs;
  std::vector<pid_t> nodes(a.nodes, 0);
  std::vector<int> output(a.nodes);  // pipes in index order: errs.held(i) is node i's
  for (auto& fd : output) fd = errs.add();
  // The last --storage nodes are storage nodes, the --dpu before them DPUs.
  auto is_dpu = [&](std::uint32_t i) { return i >= first_dpu && i < a.nodes - a.storage; };
  auto start_node = [&](std::uint32_t i) {
    const char* kind = i >= a.nodes - a.storage ? "storage" : is_dpu(i) ? "dpu" : "host";
    std::vector<std::string> argv{"node", "--index", std::to_string(i), "--rendezvous", dir.string(),
                                  "--transport", a.transport, "--kind", kind, "--executors",
                                  std::to_string(a.executors)};
    if (!tls.empty()) argv.insert(argv.end(), {"--tls", tls});
    if (!a.provider.empty()) argv.insert(argv.end(), {"--provider", a.provider});
    if (devices[i])
      argv.insert(argv.end(), {"--store", (devices[i]->mount_point() / "objects").string(), "--device",
                               devices[i]->device()});
    else if (!a.store_root.empty())
      argv.insert(argv.end(), {"--store", (std::filesystem::path(a.store_root) / fmt::format("node{}", i)).string()});
    if (a.inline_budget_us) argv.insert(argv.end(), {"--inline-budget-us", std::to_string(*a.inline_budget_us)});
    if (a.untrusted) argv.emplace_back("--untrusted");
    if (!a.trust_keys.empty()) argv.insert(argv.end(), {"--trust-keys", a.trust_keys});
    if (is_dpu(i)) {
      auto started = dpus[i - first_dpu]->start(argv, {}, output[i]);
      if (started) nodes[i] = *started;
      else failed = started.error();
    } else {
      argv.insert(argv.begin(), self);
      nodes[i] = spawn(argv, {}, output[i]);
      if (devices[i] && nodes[i] > 0)
        if (auto s = devices[i]->admit(nodes[i]); !s)
          failed = make_error(s.code(), fmt::format("storage node {}: {}", i, s.error().message()));
    }
  };
  // DPUs first: their links must exist before a host-side process starts UCX on them.
  for (std::uint32_t i = first_dpu; i < first_dpu + a.dpus && failed.ok(); ++i) start_node(i);
  for (std::uint32_t i = 0; i < a.nodes && failed.ok(); ++i)
    if (!is_dpu(i)) start_node(i);
  for (int fd : output)
    if (fd >= 0) ::close(fd);
  errs.start();
  if (!failed.ok()) {
    fmt::print(stderr, "ferry launch: {}\n", failed.describe());
    stop_all(nodes, std::chrono::milliseconds(0));
    errs.finish(std::chrono::seconds(1));
    dpus.clear();
    devices.clear();
    std::error_code ec;
    if (!mounts.empty()) std::filesystem::remove(mounts, ec);
    std::filesystem::remove_all(dir, ec);
    return 1;
  }
  // Wait for every node's address; a node that exits meanwhile fails the
  // launch at once, with its exit status and what it printed.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(a.start_timeout_ms);
  bool started = false;
  int rc = 1;
  for (;;) {
    auto ready = rv.node_addresses(a.nodes, std::chrono::milliseconds(20));
    if (ready) {
      started = true;
      break;
    }
    std::vector<std::pair<std::uint32_t, int>> exited;
    for (std::uint32_t i = 0; i < a.nodes; ++i) {
      int ws = 0;
      if (nodes[i] > 0 && ::waitpid(nodes[i], &ws, WNOHANG) == nodes[i]) {
        nodes[i] = 0;
        exited.emplace_back(i, ws);
      }
    }
    if (!exited.empty()) {
      for (const auto& [i, ws] : exited)
        fmt::print(stderr, "ferry launch: node {} {} before the cluster started; it said:\n{}", i, describe_exit(ws),
                   indented(errs.held(i, std::chrono::milliseconds(500))));
      break;
    }
    if (ready.error().code() != errc::timeout || std::chrono::steady_clock::now() > deadline) {
      fmt::print(stderr, "ferry launch: {}\n",
                 ready.error().code() == errc::timeout
                     ? fmt::format("the nodes did not all start within {} ms (--start-timeout-ms)",
                                   a.start_timeout_ms)
                     : ready.error().describe());
      for (std::uint32_t i = 0; i < a.nodes; ++i)
        if (auto said = errs.held(i, std::chrono::milliseconds(0)); !said.empty())
          fmt::print(stderr, "ferry launch: node {} said:\n{}", i, indented(said));
      break;
    }
  }
  if (started) {
    errs.pass_through();
    std::vector<std::pair<std::string, std::string>> env{{"FERRY_RENDEZVOUS", dir.string()},
                                                         {"FERRY_TRANSPORT", a.transport}};
    if (!tls.empty()) env.emplace_back("FERRY_TLS", tls);
    if (!a.provider.empty()) env.emplace_back("FERRY_OFI_PROVIDER", a.provider);
    const pid_t program = spawn(a.program, env);
    const auto waited = core::wait_child(program);
    rc = waited ? exit_status(*waited) : 1;
  }
  stop_all(nodes, started ? std::chrono::milliseconds(3000) : std::chrono::milliseconds(0));
  errs.finish(std::chrono::seconds(1));  // what the nodes said while stopping
  dpus.clear();  // their processes are gone: cgroups and links next
  devices.clear();  // unmounted and detached
  std::error_code ec;
  if (!mounts.empty()) std::filesystem::remove(mounts, ec);
  std::filesystem::remove_all(dir, ec);
  return rc;
}

}  // namespace

void add_launch_command(CLI::App& app) {
  auto a = std::make_shared<launch_args>();
  auto* cmd = app.add_subcommand("launch",
                                 "Start N local nodes, run PROGRAM as a client of them, tear everything down.\n"
                                 "Exits with PROGRAM's exit status (128+signal if it was killed).\n"
                                 "If a node cannot start (a bad --tls, an unusable store), the launch fails at once\n"
                                 "with that node's exit status and what it printed, without running PROGRAM.");
  cmd->footer(
      "The nodes and PROGRAM meet in a rendezvous directory (FERRY_RENDEZVOUS is set for PROGRAM).\n"
      "What the nodes print (their stderr, and UCX's log on their stdout) goes to this command's stderr,\n"
      "held back until every node has started; stdout is PROGRAM's alone.\n"
      "Other ways to run a cluster, with the same binaries (see `ferry node --help`):\n"
      "  several machines:  ferry node --index I --hosts a:7000,b:7000   and   FERRY_HOSTS=a:7000,b:7000 PROGRAM\n"
      "  mpirun / srun:     mpirun -np N ferry node : -np 1 PROGRAM   (PMIx)");
  cmd->add_option("-n,--nodes", a->nodes, "Number of data nodes")->check(CLI::Range(1u, 1024u));
  cmd->add_option("--dpu", a->dpus,
                  "How many of the nodes are DPU/SmartNIC nodes: the aarch64 ferry under qemu-aarch64 in a network "
                  "namespace with a veth link, pinned and capped (docs/devices.md; needs root)")
      ->check(CLI::Range(0u, 16u));
  cmd->add_option("--storage", a->storage,
                  "How many of the nodes are storage nodes: each owns a loop device (losetup --direct-io=on) on an "
                  "image file, DIR/node<i>.img with --store-root (kept), else a scratch one (needs root)");
  cmd->add_option("--storage-size", a->storage_size, "Size of a new storage image, e.g. 2GiB (sparse)")
      ->transform(CLI::AsSizeValue(false))
      ->capture_default_str();
  cmd->add_option("--storage-rate", a->storage_rate,
                  "Throttle each storage node's device to this many bytes per second, reads and writes each, e.g. "
                  "200MiB (cgroup v1 blkio; emulates a slower drive; default: not throttled)")
      ->transform(CLI::AsSizeValue(false));
  cmd->add_option("--dpu-binary", a->dpu.binary,
                  "The aarch64 ferry for DPU nodes (default: aarch64/bin/ferry in this ferry's build tree)")
      ->envname("FERRY_DPU_BINARY");
  cmd->add_option("--dpu-cpu", a->dpu.cpu, "Emulated DPU CPU: qemu -cpu and the node's JIT CPU")
      ->check(CLI::IsMember({"cortex-a72", "a64fx", "cortex-a53", "cortex-a57", "neoverse-n1"}))
      ->capture_default_str();
  cmd->add_option("--dpu-cores", a->dpu.cores, "Host CPUs the DPUs run on, taskset list (default: the last CPU)");
  cmd->add_option("--dpu-cpu-share", a->dpu.cpu_share, "cgroup CPU quota of each DPU, in CPUs")
      ->check(CLI::Range(0.01, 64.0))
      ->capture_default_str();
  cmd->add_option("--dpu-memory", a->dpu.memory, "cgroup memory limit of each DPU, e.g. 512MiB")
      ->transform(CLI::AsSizeValue(false))
      ->capture_default_str();
  cmd->add_option("--dpu-rate", a->dpu.bits_per_second, "Link rate of each DPU, bits per second each way (tc tbf)")
      ->check(CLI::Range(std::uint64_t{1000000}, std::uint64_t{400000000000}))
      ->capture_default_str();
  cmd->add_option("--dpu-latency-us", a->dpu.latency_us, "One-way link latency of each DPU (ferry's transport)")
      ->capture_default_str();
  cmd->add_option("-t,--transport", a->transport, "Transport: ucx or ofi (libfabric)")
      ->check(CLI::IsMember({"ucx", "ofi"}));
  cmd->add_option("--tls", a->tls, "UCX transports: shm, tcp, ... (default: UCX_TLS or UCX's choice)");
  cmd->add_option("--provider", a->provider,
                  "libfabric provider with --transport ofi: shm, \"tcp;ofi_rxm\", net, ... (default: FI_PROVIDER "
                  "or libfabric's first RDM provider)");
  cmd->add_option("--store-root", a->store_root, "Give node i a persistent store in DIR/node<i>");
  cmd->add_option("-e,--executors", a->executors, "Threads per node that run mobile code")->check(CLI::Range(1u, 256u));
  cmd->add_option("--inline-budget-us", a->inline_budget_us,
                  "Every node's in-place budget: calls shorter than this many microseconds run on its network "
                  "thread (ferry node --inline-budget-us; default 1000)")
      ->check(CLI::Range(std::uint64_t{0}, std::uint64_t{60'000'000}));
  cmd->add_flag("--untrusted", a->untrusted,
                "Start every node --untrusted: compile mobile code in a sandboxed helper process (docs/jit.md); "
                "needs --trust-keys");
  cmd->add_option("--trust-keys", a->trust_keys,
                  "Every node runs only code signed by a key whose .pub file is in DIR (ferry sign; docs/security.md)")
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--start-timeout-ms", a->start_timeout_ms, "How long nodes may take to start");
  cmd->add_option("program", a->program, "PROGRAM and its arguments (after --)")->required();
  cmd->callback([a] { set_exit_code(run_launch(*a)); });
}

}  // namespace ferry::cli
