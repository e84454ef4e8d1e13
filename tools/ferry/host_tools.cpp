#include "host_tools.hpp"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

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

}  // namespace ferry::cli
