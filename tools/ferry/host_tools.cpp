#include "host_tools.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <thread>

#include <fmt/format.h>

namespace ferry::cli {

result<std::string> run_tool(const std::vector<std::string>& argv) {
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return make_error(errc::io_error, fmt::format("pipe: {}", std::strerror(errno)));
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out[1], STDOUT_FILENO);
    ::dup2(out[1], STDERR_FILENO);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    _exit(127);
  }
  ::close(out[1]);
  std::string said;
  char buf[512];
  for (ssize_t n; (n = ::read(out[0], buf, sizeof buf)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    said.append(buf, static_cast<std::size_t>(n));
  }
  ::close(out[0]);
  int ws = 0;
  while (pid > 0 && ::waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
  }
  while (!said.empty() && said.back() == '\n') said.pop_back();
  if (pid > 0 && WIFEXITED(ws) && WEXITSTATUS(ws) == 0) return said;
  std::string cmd;
  for (const auto& a : argv) cmd += (cmd.empty() ? "" : " ") + a;
  if (pid > 0 && WIFEXITED(ws) && WEXITSTATUS(ws) == 127 && said.empty()) said = "not installed?";
  return make_error(errc::io_error, fmt::format("`{}` failed{}{}", cmd, said.empty() ? "" : ": ", said));
}

result<void> write_setting(const std::string& path, const std::string& value) {
  std::ofstream f(path);
  f << value;
  f.flush();
  if (!f) return make_error(errc::io_error, fmt::format("cannot write '{}' to {}", value, path));
  return {};
}

namespace {

const std::filesystem::path kCgroupRoot = "/sys/fs/cgroup";

}  // namespace

result<std::filesystem::path> make_cgroup(const std::string& controller, const std::string& name) {
  const auto dir = kCgroupRoot / controller / name;
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
    return make_error(errc::unsupported, fmt::format("cannot create cgroup {} (cgroup v1 '{}' controller): {}",
                                                     dir.string(), controller, std::strerror(errno)));
  return dir;
}

void remove_cgroup(const std::string& controller, const std::string& name) {
  const auto dir = kCgroupRoot / controller / name;
  for (int i = 0; i < 200 && ::rmdir(dir.c_str()) != 0 && errno == EBUSY; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
}

void sweep_stale_cgroups() {
  for (const char* c : {"cpu", "memory", "blkio"}) {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(kCgroupRoot / c, ec)) {
      const std::string name = e.path().filename().string();
      unsigned long owner = 0;
      char dash = 0;
      if (std::sscanf(name.c_str(), "ferry-%lu%c", &owner, &dash) != 2 || dash != '-') continue;
      if (::kill(static_cast<pid_t>(owner), 0) != 0 && errno == ESRCH) ::rmdir(e.path().c_str());
    }
  }
}

}  // namespace ferry::cli
