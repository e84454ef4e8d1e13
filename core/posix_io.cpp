#include "core/posix_io.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

namespace ferry::core {
namespace {

status os_error(const char* what, int err = errno) {
  return make_error(errc::io_error, fmt::format("{}: {}", what, std::strerror(err)));
}

}  // namespace

status write_all(int fd, std::span<const std::byte> bytes, std::optional<std::uint64_t> offset) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = offset ? ::pwrite(fd, bytes.data() + done, bytes.size() - done, static_cast<off_t>(*offset + done))
                             : ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return os_error("write");
    if (n == 0) return make_error(errc::io_error, "write: no progress");
    done += static_cast<std::size_t>(n);
  }
  return {};
}

status read_exact(int fd, std::span<std::byte> into) {
  std::size_t done = 0;
  while (done < into.size()) {
    const ssize_t n = ::read(fd, into.data() + done, into.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return os_error("read");
    if (n == 0)
      return make_error(errc::io_error, fmt::format("read: closed after {} of {} bytes", done, into.size()));
    done += static_cast<std::size_t>(n);
  }
  return {};
}

status wait_fd(int fd, short events, io_clock::time_point deadline) {
  for (;;) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - io_clock::now()).count();
    if (left <= 0) return make_error(errc::timeout, "no progress before the deadline");
    pollfd p{fd, events, 0};
    const int n = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 1 << 30)));
    if (n > 0) return {};
    if (n < 0 && errno != EINTR) return os_error("poll");
  }
}

status send_all(int fd, std::span<const std::byte> bytes, io_clock::time_point deadline) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      bytes = bytes.subspan(static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (auto s = wait_fd(fd, POLLOUT, deadline); !s.ok()) return s;
      continue;
    }
    return n == 0 ? make_error(errc::io_error, "send: closed") : os_error("send");
  }
  return {};
}

status recv_all(int fd, std::span<std::byte> into, io_clock::time_point deadline) {
  while (!into.empty()) {
    const ssize_t n = ::recv(fd, into.data(), into.size(), MSG_DONTWAIT);
    if (n > 0) {
      into = into.subspan(static_cast<std::size_t>(n));
      continue;
    }
    if (n == 0) return make_error(errc::io_error, "recv: closed before the whole message arrived");
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (auto s = wait_fd(fd, POLLIN, deadline); !s.ok()) return s;
      continue;
    }
    return os_error("recv");
  }
  return {};
}

result<int> wait_child(pid_t pid) {
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0) {
    if (errno != EINTR) return os_error("waitpid");
  }
  return st;
}

}  // namespace ferry::core
