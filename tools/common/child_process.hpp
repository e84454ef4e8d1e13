// Stopping a child process a benchmark started: SIGTERM, up to 3 s to exit,
// then SIGKILL; always reaped.
#pragma once

#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <thread>

namespace ferry::bench {

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
