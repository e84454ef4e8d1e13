#include "sandbox.hpp"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>

#include <dlfcn.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>
#include <llvm/Support/SmallVectorMemoryBuffer.h>

#include "core/posix_io.hpp"
#include "error.hpp"

// Whether this is an AddressSanitizer build (GCC's macro, clang's feature).
#if defined(__SANITIZE_ADDRESS__)
#define FERRY_ASAN_BUILD 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FERRY_ASAN_BUILD 1
#endif
#endif
#ifdef FERRY_ASAN_BUILD
constexpr bool kAsanBuild = true;
#else
constexpr bool kAsanBuild = false;
#endif

namespace ferry::jitd {
namespace {

using clock = std::chrono::steady_clock;

enum class io { done, deadline, gone };

io outcome(const status& s) { return s.ok() ? io::done : s.code() == errc::timeout ? io::deadline : io::gone; }

io send_all(int fd, const void* data, std::size_t n, clock::time_point deadline) {
  return outcome(core::send_all(fd, core::bytes_of(data, n), deadline));
}

io recv_all(int fd, void* data, std::size_t n, clock::time_point deadline) {
  return outcome(core::recv_all(fd, core::bytes_of(data, n), deadline));
}

std::string exe_dir_of(const void* addr) {
  Dl_info info{};
  if (!::dladdr(addr, &info) || !info.dli_fname) return {};
  std::error_code ec;
  return std::filesystem::canonical(info.dli_fname, ec).parent_path().string();
}

}  // namespace

std::string find_check_helper() {
  if (const char* env = std::getenv("FERRY_JIT_CHECK"); env && *env) return env;
  std::vector<std::filesystem::path> candidates;
  if (auto lib = exe_dir_of(reinterpret_cast<const void*>(&find_check_helper)); !lib.empty())
    candidates.push_back(std::filesystem::path(lib) / ".." / "bin" / "ferry-jit-check");
  std::error_code ec;
  if (auto self = std::filesystem::read_symlink("/proc/self/exe", ec); !ec)
    candidates.push_back(self.parent_path() / "ferry-jit-check");
  for (const auto& c : candidates)
    if (::access(c.c_str(), X_OK) == 0) return std::filesystem::weakly_canonical(c, ec).string();
  return {};
}

sandbox::sandbox(std::vector<std::string> argv, std::chrono::milliseconds timeout, std::uint64_t memory_bytes)
    : argv_(std::move(argv)), timeout_(timeout), memory_bytes_(memory_bytes) {}

sandbox::~sandbox() {
  std::lock_guard lock(mu_);
  if (pid_ > 0) reap(true);
}

llvm::Error sandbox::spawn() {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    return fail(errc::io_error, fmt::format("socketpair: {}", std::strerror(errno)));
  // Everything the child needs is prepared before fork: after it, only
  // async-signal-safe calls (this process has other threads).
  std::vector<char*> args;
  for (auto& a : argv_) args.push_back(a.data());
  args.push_back(nullptr);
  // AddressSanitizer reserves terabytes of address space (its shadow) as a
  // process starts: under RLIMIT_AS the helper of ferry's ASan build (make
  // test-sanitize) would abort before reading a byte. That build runs it
  // without the address-space cap; every other build keeps it.
  const rlim_t cap = kAsanBuild ? 0 : memory_bytes_;
  const rlimit as{cap, cap};
  const rlimit core{0, 0};
  const int devnull = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  const pid_t pid = ::fork();
  if (devnull >= 0 && pid != 0) ::close(devnull);
  if (pid < 0) {
    ::close(sv[0]), ::close(sv[1]);
    return fail(errc::io_error, fmt::format("fork: {}", std::strerror(errno)));
  }
  if (pid == 0) {
    ::dup2(sv[1], 0);
    ::dup2(sv[1], 1);
    // LLVM's (and crash handlers') chatter about hostile input is not the
    // node's business: the verdict comes back over the socket.
    if (devnull >= 0) ::dup2(devnull, 2);
    ::close_range(3, ~0u, 0);  // the node's sockets and files stay the node's
    if (as.rlim_cur != 0) ::setrlimit(RLIMIT_AS, &as);
    ::setrlimit(RLIMIT_CORE, &core);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(sv[1]);
  pid_ = pid;
  fd_ = sv[0];
  return llvm::Error::success();
}

std::string sandbox::reap(bool kill_it) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (kill_it) ::kill(pid_, SIGKILL);
  const auto reaped = core::wait_child(pid_);
  const int st = reaped ? *reaped : 0;
  pid_ = -1;
  if (WIFSIGNALED(st)) return fmt::format("killed by signal {} ({})", WTERMSIG(st), ::strsignal(WTERMSIG(st)));
  return fmt::format("exited with status {}", WEXITSTATUS(st));
}

llvm::Expected<std::unique_ptr<llvm::MemoryBuffer>> sandbox::compile(std::span<const std::uint8_t> bitcode,
                                                                     const std::string& entry, jit_tier tier,
                                                                     bool* helper_failed) {
  std::lock_guard lock(mu_);
  *helper_failed = false;
  if (pid_ < 0)
    if (auto e = spawn()) return std::move(e);
  const auto deadline = clock::now() + timeout_;

  std::vector<char> head(4 + 1 + 4);
  const std::uint32_t magic = kCheckMagic, elen = static_cast<std::uint32_t>(entry.size());
  const std::uint8_t t = static_cast<std::uint8_t>(tier);
  const std::uint64_t blen = bitcode.size();
  std::memcpy(head.data(), &magic, 4);
  head[4] = static_cast<char>(t);
  std::memcpy(head.data() + 5, &elen, 4);
  io rc = send_all(fd_, head.data(), head.size(), deadline);
  if (rc == io::done) rc = send_all(fd_, entry.data(), entry.size(), deadline);
  if (rc == io::done) rc = send_all(fd_, &blen, sizeof blen, deadline);
  if (rc == io::done) rc = send_all(fd_, bitcode.data(), bitcode.size(), deadline);

  std::uint16_t code = 0;
  std::uint32_t mlen = 0;
  std::string msg;
  std::uint64_t olen = 0;
  llvm::SmallVector<char, 0> object;
  if (rc == io::done) rc = recv_all(fd_, &code, sizeof code, deadline);
  if (rc == io::done) rc = recv_all(fd_, &mlen, sizeof mlen, deadline);
  if (rc == io::done && mlen > (1u << 16)) rc = io::gone;
  if (rc == io::done) msg.resize(mlen), rc = recv_all(fd_, msg.data(), mlen, deadline);
  if (rc == io::done) rc = recv_all(fd_, &olen, sizeof olen, deadline);
  if (rc == io::done && olen > kMaxCheckPayload) rc = io::gone;
  if (rc == io::done) object.resize(olen), rc = recv_all(fd_, object.data(), olen, deadline);

  if (rc != io::done) {
    *helper_failed = true;
    const std::string how = reap(true);
    if (rc == io::deadline)
      return fail(errc::timeout, fmt::format("sandboxed compile did not finish within {} ms (helper {})",
                                             timeout_.count(), how));
    return fail(errc::corrupt, fmt::format("sandboxed compile failed: helper {} while processing the bitcode", how));
  }
  if (code != 0) return fail(static_cast<errc>(code), msg);
  return std::make_unique<llvm::SmallVectorMemoryBuffer>(std::move(object), "ferry-jit-object", false);
}

}  // namespace ferry::jitd
