// Helpers shared by ferry's tests.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

#include <ferry/status.hpp>

namespace ferry::test {

/// Network endpoints of this process and of the processes it starts use
/// loopback only: UCX (UCX_NET_DEVICES) and libfabric's tcp provider
/// (FI_TCP_IFACE, which otherwise takes the first NIC, e.g. eth0).
inline void loopback_only() {
  ::setenv("UCX_NET_DEVICES", "lo", 1);
  ::setenv("FI_TCP_IFACE", "lo", 1);
}

/// Whether `ok()` holds within `limit` (asked every 2 ms, and once more at the end).
template <class Pred>
bool eventually(Pred ok, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  const auto until = std::chrono::steady_clock::now() + limit;
  for (; std::chrono::steady_clock::now() < until; std::this_thread::sleep_for(std::chrono::milliseconds(2)))
    if (ok()) return true;
  return ok();
}

/// Bytes this process has had read from storage (/proc/self/io's
/// read_bytes; O_DIRECT reads included), or nullopt where the kernel does
/// not count them.
inline std::optional<std::uint64_t> storage_bytes_read() {
  std::ifstream in("/proc/self/io");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("read_bytes: ", 0) == 0) return std::strtoull(line.c_str() + 12, nullptr, 10);
  return std::nullopt;
}

/// An environment variable set while it lives (for this process and the
/// processes it starts), then as it was.
class scoped_env {
 public:
  scoped_env(const char* name, const char* value) : name_(name) {
    if (const char* was = std::getenv(name)) before_ = was;
    ::setenv(name, value, 1);
  }
  ~scoped_env() {
    if (before_) ::setenv(name_.c_str(), before_->c_str(), 1);
    else ::unsetenv(name_.c_str());
  }
  scoped_env(const scoped_env&) = delete;
  scoped_env& operator=(const scoped_env&) = delete;

 private:
  std::string name_;
  std::optional<std::string> before_;
};

/// A fresh directory under $TMPDIR, removed (with contents) on scope exit.
class temp_dir {
 public:
  temp_dir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "ferry-test-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) FAIL("mkdtemp failed");
    path_ = tmpl;
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

/// A tmpfs of `size` ("1m") mounted on `dir` while this lives: a disk that
/// fills on demand. Where this process may not mount, mounted() is false
/// and why() says so (a test then skips, saying why).
class small_tmpfs {
 public:
  small_tmpfs(std::filesystem::path dir, const char* size) : dir_(std::move(dir)) {
    const std::string options = std::string("size=") + size;
    if (::mount("tmpfs", dir_.c_str(), "tmpfs", 0, options.c_str()) == 0) {
      mounted_ = true;
    } else {
      why_ = std::string("cannot mount a tmpfs here: ") + std::strerror(errno);
    }
  }
  ~small_tmpfs() {
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  small_tmpfs(const small_tmpfs&) = delete;
  small_tmpfs& operator=(const small_tmpfs&) = delete;
  [[nodiscard]] bool mounted() const { return mounted_; }
  [[nodiscard]] const std::string& why() const { return why_; }

 private:
  std::filesystem::path dir_;
  bool mounted_ = false;
  std::string why_;
};

/// The stacks of process `pid`'s threads, one line per frame, each line
/// starting with a newline; empty without gdb. `pid` may be this process:
/// gdb writes to a file, not a pipe this process would have to drain.
inline std::string stacks_of(pid_t pid) {
  const std::string file = (std::filesystem::temp_directory_path() / ("ferry-stacks-" + std::to_string(::getpid()))).string();
  const std::string gdb = "timeout 30 gdb -batch -nx -p " + std::to_string(pid) +
                          " -ex 'thread apply all bt 12' 2>/dev/null | grep -E '^(Thread|#)' > " + file;
  std::string out;
  (void)std::system(gdb.c_str());  // -1 where SIGCHLD is ignored, though gdb ran
  if (std::FILE* f = std::fopen(file.c_str(), "r")) {
    char line[512];
    while (std::fgets(line, sizeof line, f)) {
      std::string l(line);
      if (!l.empty() && l.back() == '\n') l.pop_back();
      out += "\n  " + l;
    }
    std::fclose(f);
  }
  std::error_code ec;
  std::filesystem::remove(file, ec);
  return out;
}

/// A child process running `argv` (a `ferry node`, say). Destruction stops
/// it: SIGTERM, up to 3 s to exit, then SIGKILL. If the test process dies
/// first (a crash, an abort on a failed REQUIRE), the child gets SIGKILL:
/// no node outlives its test. The signal follows the thread that forked:
/// create it from the test's main thread, or from a thread that outlives it.
/// Its stderr goes to `stderr_to` if given (created or truncated), else to
/// the test's. Another thread may ask whether it ended() while this one
/// waits for it.
class process {
 public:
  explicit process(const std::vector<std::string>& argv, const std::filesystem::path& stderr_to = {}) {
    // Built before the fork: the child of a threaded process only execs.
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    const std::string log = stderr_to.string();
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) FAIL("fork failed");
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) _exit(127);  // the test died before prctl
      if (!log.empty()) {
        const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || ::dup2(fd, STDERR_FILENO) < 0) _exit(126);
      }
      ::execv(args[0], args.data());
      _exit(127);
    }
    pid_ = pid;
  }
  ~process() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 300; ++i, std::this_thread::sleep_for(std::chrono::milliseconds(10)))
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) return;
    kill();
  }
  process(const process&) = delete;
  process& operator=(const process&) = delete;

  /// SIGKILL and reap (a crash, as far as the others can tell).
  void kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = 0;
  }
  /// Wait up to `limit` for the process to end by itself (reaped if so).
  bool exited_within(std::chrono::milliseconds limit) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (pid_ > 0) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) pid_ = 0;
      else if (std::chrono::steady_clock::now() > until) return false;
      else std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return true;
  }
  [[nodiscard]] pid_t pid() const { return pid_; }

  /// Has it ended (not reaped: describe() still tells how)? If so and
  /// `signal` is given, the signal that ended it (0: it exited).
  [[nodiscard]] bool ended(int* signal = nullptr) const {
    siginfo_t info{};
    const pid_t pid = pid_;
    if (pid <= 0 || ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0 ||
        info.si_pid != pid)
      return false;
    if (signal) *signal = info.si_code == CLD_EXITED ? 0 : info.si_status;
    return true;
  }

  /// What the process is doing, for a failure message: how it ended, or
  /// that it still runs, with its threads' stacks when gdb is installed
  /// (a hung process says where it hangs).
  [[nodiscard]] std::string describe() const {
    const pid_t pid = pid_;
    if (pid <= 0) return "not running (reaped)";
    siginfo_t info{};
    if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == pid)
      return info.si_code == CLD_EXITED ? "exited with status " + std::to_string(info.si_status)
                                        : "ended by signal " + std::to_string(info.si_status);
    return "running (pid " + std::to_string(pid) + ")" + stacks_of(pid);
  }

 private:
  std::atomic<pid_t> pid_ = 0;
};

}  // namespace ferry::test

namespace ferry::test {
/// What a result or a status says, for a failed check's message.
inline std::string outcome(const ferry::status& s) { return s.ok() ? "success" : s.describe(); }
template <class T>
std::string outcome(const ferry::result<T>& r) {
  return r.ok() ? "success" : r.error().describe();
}
}  // namespace ferry::test

/// Check that a result/status holds an error of kind `kind`.
#define CHECK_ERRC(expr, kind)                                               \
  do {                                                                       \
    const auto& ferry_check_ = (expr);                                       \
    CHECK_MESSAGE(ferry_check_.code() == (kind),                             \
                  "expected " << ::ferry::to_string(kind) << ", got "        \
                              << ::ferry::test::outcome(ferry_check_));      \
  } while (0)

/// Unwrap a result or fail the test with its error.
#define REQUIRE_OK(expr) ::ferry::test::unwrap((expr), #expr)

namespace ferry::test {
template <class T>
T unwrap(ferry::result<T> r, const char* expr) {
  REQUIRE_MESSAGE(r.ok(), expr << " failed: " << r.error().describe());
  return std::move(*r);
}
inline void unwrap(ferry::result<void> r, const char* expr) {
  REQUIRE_MESSAGE(r.ok(), expr << " failed: " << r.error().describe());
}
}  // namespace ferry::test
