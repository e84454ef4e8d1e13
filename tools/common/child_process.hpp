// The processes a benchmark starts and stops: children that die with it,
// `ferry node` found next to the running program, stopping (SIGTERM, up to
// 3 s to exit, then SIGKILL; always reaped), and a scratch directory with
// the servers started around it (scratch_servers).
#pragma once

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stdlib.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

namespace ferry::bench {

/// Replace this process with `argv` (argv[0] is the path). Returns only if
/// that failed (errno says why).
inline void exec_argv(std::vector<std::string> argv) {
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  ::execv(args[0], args.data());
}

/// Start `argv` as a child that is killed when this process dies.
inline pid_t start_child(std::vector<std::string> argv) {
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid != 0) return pid;
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) _exit(127);
  exec_argv(std::move(argv));
  _exit(127);
}

/// This program's own path, and `ferry` installed next to it.
inline std::string self_path() { return std::filesystem::read_symlink("/proc/self/exe").string(); }
inline std::string ferry_next_to_self() {
  return (std::filesystem::read_symlink("/proc/self/exe").parent_path() / "ferry").string();
}

inline void stop_child(pid_t pid) {
  ::kill(pid, SIGTERM);
  int st = 0;
  for (int i = 0; i < 300 && ::waitpid(pid, &st, WNOHANG) == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  if (::waitpid(pid, &st, WNOHANG) == 0) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &st, 0);
  }
}

/// A fresh scratch directory (`prefix`-XXXXXX in the temporary directory)
/// and the server processes started for it: on destruction the servers are
/// stopped (stop_child, in order) and then the directory is removed.
class scratch_servers {
 public:
  /// Throws std::system_error if the directory cannot be created.
  explicit scratch_servers(std::string_view prefix) {
    std::string tmpl = (std::filesystem::temp_directory_path() / (std::string(prefix) + "-XXXXXX")).string();
    if (!::mkdtemp(tmpl.data())) throw std::system_error(errno, std::generic_category(), "cannot create " + tmpl);
    dir_ = tmpl;
  }
  ~scratch_servers() {
    for (const pid_t p : pids_) stop_child(p);
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  scratch_servers(const scratch_servers&) = delete;
  scratch_servers& operator=(const scratch_servers&) = delete;

  const std::filesystem::path& dir() const { return dir_; }
  /// start_child(argv), stopped with the others.
  void start(std::vector<std::string> argv) { pids_.push_back(start_child(std::move(argv))); }

 private:
  std::filesystem::path dir_;
  std::vector<pid_t> pids_;
};

}  // namespace ferry::bench
