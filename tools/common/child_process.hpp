// The processes a benchmark starts and stops: children that die with it,
// `ferry node` found next to the running program, and stopping (SIGTERM, up
// to 3 s to exit, then SIGKILL; always reaped).
#pragma once

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <string>
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

}  // namespace ferry::bench
