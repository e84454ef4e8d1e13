#include "dpu.hpp"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>
#include <tuple>

#include <fmt/format.h>

#include "host_tools.hpp"

namespace ferry::cli {

namespace {

namespace fs = std::filesystem;

constexpr const char* kControllers[] = {"cpu", "memory"};

// A /30 per DPU, unique per (launcher pid, k) for k < 16 among launchers whose
// pids differ modulo 4096: 10.64.0.0 - 10.67.255.255.
std::pair<std::string, std::string> link_addresses(pid_t launcher, std::uint32_t k) {
  const std::uint32_t index = static_cast<std::uint32_t>(launcher % 4096) * 16 + k;
  const std::uint32_t base = (10u << 24) | (64u << 16) | (index << 2);
  auto ip = [](std::uint32_t a) { return fmt::format("{}.{}.{}.{}", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255); };
  return {ip(base + 1), ip(base + 2)};
}

}  // namespace

dpu::dpu(std::uint32_t k, dpu_profile profile) : k_(k), p_(std::move(profile)) {
  const pid_t self = ::getpid();
  host_dev_ = fmt::format("fy{}d{}h", self, k);
  dpu_dev_ = fmt::format("fy{}d{}n", self, k);
  std::tie(host_ip_, dpu_ip_) = link_addresses(self, k);
  cgroup_ = fmt::format("ferry-{}-dpu{}", self, k);
  if (p_.cores.empty()) p_.cores = std::to_string(std::max(1L, ::sysconf(_SC_NPROCESSORS_ONLN)) - 1);
}

dpu::~dpu() {
  if (pid_ > 0) {  // a child that never ran the node (wiring it failed); a started one is the launcher's
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  // The namespace died with the process, taking the veth; deleting the host
  // end covers a process that never entered it.
  (void)run_tool({"ip", "link", "del", host_dev_});
  if (cgroups_made_)
    for (const char* c : kControllers) remove_cgroup(c, cgroup_);
}

result<void> dpu::wire(pid_t child) {
  const std::string ns = fmt::format("--net=/proc/{}/ns/net", child);
  const std::string rate = fmt::format("{}bit", p_.bits_per_second);
  // tbf needs a bucket of at least one timer tick's worth of bytes (4 ms at HZ=250).
  const std::string burst = std::to_string(std::max<std::uint64_t>(p_.bits_per_second / 8 / 250, 64 * 1024));
  FERRY_TRY_STATUS(run_tool({"ip", "link", "add", host_dev_, "type", "veth", "peer", "name", dpu_dev_}));
  FERRY_TRY_STATUS(run_tool({"ip", "link", "set", dpu_dev_, "netns", std::to_string(child)}));
  FERRY_TRY_STATUS(run_tool({"ip", "addr", "add", host_ip_ + "/30", "dev", host_dev_}));
  FERRY_TRY_STATUS(run_tool({"ip", "link", "set", host_dev_, "up"}));
  // DPU-to-DPU traffic is routed through the host, over these links only.
  (void)write_setting(fmt::format("/proc/sys/net/ipv4/conf/{}/forwarding", host_dev_), "1");
  FERRY_TRY_STATUS(run_tool({"nsenter", ns, "ip", "addr", "add", dpu_ip_ + "/30", "dev", dpu_dev_}));
  FERRY_TRY_STATUS(run_tool({"nsenter", ns, "ip", "link", "set", dpu_dev_, "up"}));
  FERRY_TRY_STATUS(run_tool({"nsenter", ns, "ip", "link", "set", "lo", "up"}));
  FERRY_TRY_STATUS(run_tool({"nsenter", ns, "ip", "route", "add", "default", "via", host_ip_}));
  FERRY_TRY_STATUS(run_tool({"tc", "qdisc", "add", "dev", host_dev_, "root", "tbf", "rate", rate, "burst", burst,
                             "latency", "50ms"}));
  FERRY_TRY_STATUS(run_tool({"nsenter", ns, "tc", "qdisc", "add", "dev", dpu_dev_, "root", "tbf", "rate", rate,
                             "burst", burst, "latency", "50ms"}));
  FERRY_TRY(const fs::path cpu, make_cgroup("cpu", cgroup_));
  cgroups_made_ = true;
  FERRY_TRY(const fs::path mem, make_cgroup("memory", cgroup_));
  FERRY_TRY_STATUS(write_setting((cpu / "cpu.cfs_period_us").string(), "100000"));
  FERRY_TRY_STATUS(write_setting((cpu / "cpu.cfs_quota_us").string(), std::to_string(static_cast<long>(p_.cpu_share * 100000))));
  FERRY_TRY_STATUS(write_setting((mem / "memory.limit_in_bytes").string(), std::to_string(p_.memory)));
  FERRY_TRY_STATUS(write_setting((cpu / "tasks").string(), std::to_string(child)));
  FERRY_TRY_STATUS(write_setting((mem / "tasks").string(), std::to_string(child)));
  // UCX must not start before the link is up (it would find no usable address).
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  for (;;) {
    std::ifstream f(fs::path("/sys/class/net") / host_dev_ / "operstate");
    std::string state;
    f >> state;
    if (state == "up") return {};
    if (std::chrono::steady_clock::now() > until)
      return make_error(errc::timeout, fmt::format("veth {} still '{}' after 5 s", host_dev_, state));
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

result<pid_t> dpu::start(const std::vector<std::string>& node_args,
                         const std::vector<std::pair<std::string, std::string>>& env, int output_fd) {
  int ready[2], go[2];
  if (::pipe2(ready, O_CLOEXEC) != 0 || ::pipe2(go, O_CLOEXEC) != 0)
    return make_error(errc::io_error, fmt::format("pipe: {}", std::strerror(errno)));
  std::vector<std::string> argv{"taskset", "-c", p_.cores, "qemu-aarch64", "-cpu", p_.cpu, p_.binary};
  argv.insert(argv.end(), node_args.begin(), node_args.end());
  // Objects may fill half the cgroup's memory: past that, creating one fails
  // with out_of_memory instead of the kernel killing the node (the JIT,
  // qemu and LLVM need the rest).
  argv.insert(argv.end(), {"--cpu", p_.cpu, "--link-latency-us", std::to_string(p_.latency_us), "--memory-limit",
                           std::to_string(p_.memory / 2)});
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) _exit(127);
    ::close(ready[0]);
    ::close(go[1]);
    // A mount namespace too: /sys must be remounted to show this network
    // namespace's devices (UCX finds its devices there), without touching
    // the host's /sys. Mounts stay private to the DPU.
    if (::unshare(CLONE_NEWNET | CLONE_NEWNS) != 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
      fmt::print(stderr, "ferry launch: DPU {}: cannot create network and mount namespaces: {}\n", k_,
                 std::strerror(errno));
      _exit(126);
    }
    char c = 1;
    if (::write(ready[1], &c, 1) != 1 || ::read(go[0], &c, 1) != 1) _exit(125);  // the launcher gave up
    if (::umount2("/sys", MNT_DETACH) != 0 || ::mount("sysfs", "/sys", "sysfs", 0, nullptr) != 0) {
      fmt::print(stderr, "ferry launch: DPU {}: cannot mount /sys for its network namespace: {}\n", k_,
                 std::strerror(errno));
      _exit(126);
    }
    if (output_fd >= 0 && (::dup2(output_fd, STDOUT_FILENO) < 0 || ::dup2(output_fd, STDERR_FILENO) < 0)) _exit(127);
    for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
    ::setenv("UCX_NET_DEVICES", dpu_dev_.c_str(), 1);  // its only link
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    fmt::print(stderr, "ferry launch: DPU {}: cannot run {}: {}\n", k_, argv[0], std::strerror(errno));
    _exit(127);
  }
  ::close(ready[1]);
  ::close(go[0]);
  if (pid < 0) {
    ::close(ready[0]);
    ::close(go[1]);
    return make_error(errc::io_error, fmt::format("fork: {}", std::strerror(errno)));
  }
  pid_ = pid;
  char c = 0;
  ssize_t n;
  while ((n = ::read(ready[0], &c, 1)) < 0 && errno == EINTR) {
  }
  ::close(ready[0]);
  auto wired = n == 1 ? wire(pid) : result<void>(make_error(errc::unsupported, fmt::format(
                                                                "DPU {}: no network namespace (needs root)", k_)));
  if (!wired) {
    ::close(go[1]);  // the child exits
    return wired.error();
  }
  c = 1;
  const bool released = ::write(go[1], &c, 1) == 1;
  ::close(go[1]);
  if (!released) return make_error(errc::io_error, fmt::format("DPU {} exited before it started", k_));
  pid_ = 0;  // the launcher reaps it from here on
  return pid;
}

}  // namespace ferry::cli
