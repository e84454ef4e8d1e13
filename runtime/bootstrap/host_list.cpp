// Host-list bootstrap: parsing, each node's bootstrap port (a small TCP
// server), and fetching addresses from the other entries (host_list.hpp).
#include "host_list.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "bootstrap.hpp"
#include "core/posix_io.hpp"
#include "wire/bootstrap.hpp"

namespace ferry::cluster {

using clock = std::chrono::steady_clock;

std::string host_entry::text() const {
  return host.find(':') != std::string::npos ? fmt::format("[{}]:{}", host, port) : fmt::format("{}:{}", host, port);
}

namespace {

result<host_entry> parse_entry(std::string_view text, const std::string& where) {
  auto bad = [&](std::string_view why) {
    return make_error(errc::bad_format, fmt::format("host list {}: '{}' {} (expected HOST:PORT, e.g. node1:7000 or "
                                                    "[fd00::1]:7000)",
                                                    where, text, why));
  };
  host_entry e;
  std::string_view port;
  if (text.starts_with('[')) {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return bad("has no ]:PORT after the IPv6 address");
    e.host = std::string(text.substr(1, close - 1));
    port = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return bad("has no :PORT");
    e.host = std::string(text.substr(0, colon));
    port = text.substr(colon + 1);
    if (e.host.find(':') != std::string::npos) return bad("looks like an IPv6 address: write it in brackets");
  }
  if (e.host.empty()) return bad("has no host");
  if (e.host.find_first_of(" \t/") != std::string::npos) return bad("has a space or slash in the host");
  unsigned p = 0;
  const auto [end, err] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (port.empty() || err != std::errc{} || end != port.data() + port.size() || p == 0 || p > 65535)
    return bad("has no port in 1..65535");
  e.port = static_cast<std::uint16_t>(p);
  return e;
}

std::string_view trim(std::string_view s) {
  const auto b = s.find_first_not_of(" \t\r");
  if (b == std::string_view::npos) return {};
  const auto e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

// --- sockets ---------------------------------------------------------------

class fd_guard {
 public:
  explicit fd_guard(int fd = -1) : fd_(fd) {}
  ~fd_guard() {
    if (fd_ >= 0) ::close(fd_);
  }
  fd_guard(const fd_guard&) = delete;
  fd_guard& operator=(const fd_guard&) = delete;
  [[nodiscard]] int get() const { return fd_; }

 private:
  int fd_;
};

status write_all(int fd, std::span<const std::uint8_t> bytes, clock::time_point deadline) {
  return core::send_all(fd, std::as_bytes(bytes), deadline);
}

status read_all(int fd, std::span<std::uint8_t> into, clock::time_point deadline) {
  return core::recv_all(fd, std::as_writable_bytes(into), deadline);
}

// One length-prefixed message (wire/bootstrap.hpp) each way.
status send_message(int fd, const std::vector<std::uint8_t>& body, clock::time_point deadline) {
  const auto len = static_cast<std::uint32_t>(body.size());
  std::vector<std::uint8_t> out(sizeof len + body.size());
  std::memcpy(out.data(), &len, sizeof len);
  std::memcpy(out.data() + sizeof len, body.data(), body.size());
  return write_all(fd, out, deadline);
}

result<std::vector<std::uint8_t>> receive_message(int fd, clock::time_point deadline) {
  std::uint32_t len = 0;
  if (auto s = read_all(fd, {reinterpret_cast<std::uint8_t*>(&len), sizeof len}, deadline); !s.ok()) return s;
  if (len > wire::kMaxBootstrapMessage)
    return make_error(errc::bad_format, fmt::format("bootstrap message of {} bytes: is this port a ferry node's?", len));
  std::vector<std::uint8_t> body(len);
  if (auto s = read_all(fd, body, deadline); !s.ok()) return s;
  return body;
}

// Ask entry `e` one question. Errors a retry may cure (the node is not up
// yet) are io_error/timeout; not_found means the host name does not resolve.
result<wire::bootstrap_answer> ask(const host_entry& e, const wire::bootstrap_request& q, clock::time_point deadline) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(e.port);
  if (const int rc = ::getaddrinfo(e.host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    if (rc == EAI_AGAIN) return make_error(errc::io_error, fmt::format("resolving {}: {}", e.host, gai_strerror(rc)));
    return make_error(errc::not_found, fmt::format("cannot resolve host '{}': {}", e.host, gai_strerror(rc)));
  }
  status last = make_error(errc::io_error, "no address");
  for (const addrinfo* a = found; a != nullptr; a = a->ai_next) {
    fd_guard s(::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol));
    if (s.get() < 0) {
      last = make_error(errc::io_error, fmt::format("socket: {}", std::strerror(errno)));
      continue;
    }
    if (::connect(s.get(), a->ai_addr, a->ai_addrlen) != 0) {
      if (errno != EINPROGRESS) {
        last = make_error(errc::io_error, std::strerror(errno));
        continue;
      }
      if (!core::wait_fd(s.get(), POLLOUT, deadline).ok()) {
        last = make_error(errc::timeout, "connect timed out");
        continue;
      }
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(s.get(), SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        last = make_error(errc::io_error, std::strerror(err));
        continue;
      }
    }
    const int one = 1;
    ::setsockopt(s.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (auto st = send_message(s.get(), wire::encode(q), deadline); !st.ok()) {
      last = st;
      continue;
    }
    auto body = receive_message(s.get(), deadline);
    if (!body) {
      last = body.error();
      continue;
    }
    ::freeaddrinfo(found);
    return wire::decode_bootstrap_answer(*body);
  }
  ::freeaddrinfo(found);
  return last;
}

bool retryable(errc e) { return e == errc::io_error || e == errc::timeout; }

// --- the bootstrap ----------------------------------------------------------

class host_list_bootstrap final : public bootstrap {
 public:
  host_list_bootstrap(std::vector<host_entry> hosts, bootstrap_role role, node_index self)
      : hosts_(std::move(hosts)), role_(role), self_(self) {}

  ~host_list_bootstrap() override {
    if (server_.joinable()) {
      const std::uint64_t one = 1;
      [[maybe_unused]] auto n = ::write(stop_fd_, &one, sizeof one);
      server_.join();
    }
    if (listen_fd_ >= 0) ::close(listen_fd_);
    if (stop_fd_ >= 0) ::close(stop_fd_);
  }

  // A node binds its port when it opens, so a port in use fails at once.
  status listen() {
    const host_entry& me = hosts_[self_];
    listen_fd_ = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool v6 = listen_fd_ >= 0;
    if (!v6) listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listen_fd_ < 0) return make_error(errc::io_error, fmt::format("socket: {}", std::strerror(errno)));
    const int one = 1, zero = 0;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);  // a restarted node rebinds at once
    int rc;
    if (v6) {
      ::setsockopt(listen_fd_, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);  // IPv4 too
      sockaddr_in6 a{};
      a.sin6_family = AF_INET6;
      a.sin6_addr = in6addr_any;
      a.sin6_port = htons(me.port);
      rc = ::bind(listen_fd_, reinterpret_cast<const sockaddr*>(&a), sizeof a);
    } else {
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_ANY);
      a.sin_port = htons(me.port);
      rc = ::bind(listen_fd_, reinterpret_cast<const sockaddr*>(&a), sizeof a);
    }
    if (rc != 0 || ::listen(listen_fd_, 64) != 0)
      return make_error(errc::io_error, fmt::format("node {} cannot listen on port {} (host list entry {}): {}", self_,
                                                    me.port, me.text(), std::strerror(errno)));
    stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (stop_fd_ < 0) return make_error(errc::io_error, "eventfd failed");
    return {};
  }

  // A client asks node 0 for its member index.
  status claim(std::chrono::milliseconds timeout) {
    const wire::bootstrap_request q{wire::bootstrap_ask::member_index, nodes()};
    auto a = fetch(0, q, timeout);
    if (!a) return a.error();
    if (a->index < nodes() || a->index == wire::kNoNode)
      return make_error(errc::bad_format, fmt::format("node 0 ({}) granted member index {}", hosts_[0].text(), a->index));
    self_ = a->index;
    return {};
  }

  std::string describe() const override {
    std::vector<std::string> t;
    for (const auto& h : hosts_) t.push_back(h.text());
    return fmt::format("hosts {}", fmt::join(t, ","));
  }
  std::uint32_t nodes() const override { return static_cast<std::uint32_t>(hosts_.size()); }
  node_index self() const override { return self_; }

  result<void> publish(std::span<const std::uint8_t> address) override {
    if (role_ != bootstrap_role::node) return {};  // nodes keep no client addresses (bootstrap.hpp)
    {
      std::lock_guard lock(mu_);
      address_.assign(address.begin(), address.end());
    }
    if (!server_.joinable()) server_ = std::thread([this] { serve(); });
    return {};
  }

  result<std::vector<std::vector<std::uint8_t>>> node_addresses(std::chrono::milliseconds timeout) override {
    const auto deadline = clock::now() + timeout;
    std::vector<std::vector<std::uint8_t>> out(nodes());
    for (;;) {
      std::vector<std::string> missing;
      for (node_index i = 0; i < nodes(); ++i) {
        if (!out[i].empty()) continue;
        if (role_ == bootstrap_role::node && i == self_) {
          std::lock_guard lock(mu_);
          out[i] = address_;
          continue;
        }
        auto a = attempt(i, {wire::bootstrap_ask::address, nodes()}, deadline);
        if (a) out[i] = std::move(a->address);
        else if (!retryable(a.code())) return a.error();
        else missing.push_back(a.error().message());
      }
      if (missing.empty()) return out;
      if (clock::now() >= deadline)
        return make_error(errc::timeout, fmt::format("no answer within {} ms from {}", timeout.count(),
                                                     fmt::join(missing, "; ")));
      std::this_thread::sleep_for(kRetry);
    }
  }

  std::vector<std::pair<node_index, std::vector<std::uint8_t>>> clients() const override { return {}; }
  result<void> leave() override { return {}; }

 private:
  static constexpr std::chrono::milliseconds kAttempt{1000};  // one connection's budget
  static constexpr std::chrono::milliseconds kRetry{20};

  // One attempt at node i: its checked answer, or an error naming the node.
  result<wire::bootstrap_answer> attempt(node_index i, const wire::bootstrap_request& q, clock::time_point deadline) {
    auto a = ask(hosts_[i], q, std::min(deadline, clock::now() + kAttempt));
    if (!a) return make_error(a.code(), fmt::format("node {} ({}): {}", i, hosts_[i].text(), a.error().message()));
    if (auto s = check(i, *a); !s.ok()) return s;
    return a;
  }

  // Ask node i until it answers or `timeout` passes.
  result<wire::bootstrap_answer> fetch(node_index i, const wire::bootstrap_request& q, std::chrono::milliseconds timeout) {
    const auto deadline = clock::now() + timeout;
    for (;;) {
      auto a = attempt(i, q, deadline);
      if (a || !retryable(a.code())) return a;
      if (clock::now() >= deadline)
        return make_error(errc::timeout, fmt::format("no answer within {} ms from {}", timeout.count(), a.error().message()));
      std::this_thread::sleep_for(kRetry);
    }
  }

  // An answer from entry i: a refusal, or a node that is not entry i of the same list, is final.
  status check(node_index i, const wire::bootstrap_answer& a) const {
    if (a.code != errc::ok) return make_error(a.code, fmt::format("node {} ({}) refused: {}", i, hosts_[i].text(), a.message));
    if (a.nodes != nodes())
      return make_error(errc::invalid_argument,
                        fmt::format("node {} ({}) has a host list of {} entries, this process one of {}: give every "
                                    "process the same list",
                                    i, hosts_[i].text(), a.nodes, nodes()));
    if (a.ask == wire::bootstrap_ask::address && a.index != i)
      return make_error(errc::invalid_argument, fmt::format("{} (entry {} of the host list) is node {}: check --index",
                                                            hosts_[i].text(), i, a.index));
    return {};
  }

  void serve() {
    for (;;) {
      pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
      if (::poll(fds, 2, -1) < 0 && errno != EINTR) return;
      if (fds[1].revents) return;
      if (!(fds[0].revents & POLLIN)) continue;
      fd_guard c(::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
      if (c.get() < 0) continue;
      answer(c.get());
    }
  }

  // One request, one answer; a peer that stalls gets kServe, then is dropped.
  void answer(int fd) {
    static constexpr std::chrono::milliseconds kServe{1000};
    const auto deadline = clock::now() + kServe;
    auto body = receive_message(fd, deadline);
    if (!body) return;
    wire::bootstrap_answer a;
    a.nodes = nodes();
    auto q = wire::decode_bootstrap_request(*body);
    if (!q) {
      a.code = q.code();
      a.message = q.error().message();
    } else {
      a.ask = q->ask;
      if (q->nodes != nodes()) {
        a.code = errc::invalid_argument;
        a.message = fmt::format("node {} has a host list of {} entries, the requester one of {}: give every process "
                                "the same list",
                                self_, nodes(), q->nodes);
      } else if (q->ask == wire::bootstrap_ask::address) {
        a.index = self_;
        std::lock_guard lock(mu_);
        a.address = address_;
      } else if (self_ != 0) {
        a.code = errc::invalid_argument;
        a.message = fmt::format("node {} does not grant member indices: ask node 0", self_);
      } else {
        a.index = grant_member();
      }
    }
    (void)send_message(fd, wire::encode(a), deadline);
  }

  // N + k, k = max(last k + 1, milliseconds since the epoch mod 2^31): unique
  // among the clients of this process and, after a restart of node 0, unless
  // more than one client per millisecond joined before it.
  node_index grant_member() {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count();
    const auto seed = static_cast<std::uint32_t>(ms % (std::int64_t{1} << 31));
    next_member_ = std::max(next_member_, seed);
    return nodes() + next_member_++;
  }

  std::vector<host_entry> hosts_;
  bootstrap_role role_;
  node_index self_;
  int listen_fd_ = -1;
  int stop_fd_ = -1;
  std::mutex mu_;
  std::vector<std::uint8_t> address_;  // this node's transport address (guarded by mu_)
  std::uint32_t next_member_ = 0;      // server thread only
  std::thread server_;
};

}  // namespace

result<std::vector<host_entry>> parse_host_list(std::string_view spec) {
  std::vector<host_entry> out;
  std::vector<std::string> where;
  std::error_code ec;
  const std::filesystem::path file{std::string(spec)};
  if (!spec.empty() && std::filesystem::is_regular_file(file, ec)) {
    std::ifstream in(file);
    if (!in) return make_error(errc::io_error, fmt::format("cannot read host list {}", file.string()));
    std::string line;
    for (unsigned n = 1; std::getline(in, line); ++n) {
      std::string_view t = line;
      if (const auto hash = t.find('#'); hash != std::string_view::npos) t = t.substr(0, hash);
      t = trim(t);
      if (t.empty()) continue;
      where.push_back(fmt::format("{} line {}", file.string(), n));
      FERRY_TRY(auto e, parse_entry(t, where.back()));
      out.push_back(std::move(e));
    }
  } else {
    // Inline. A lone word without a colon was probably meant as a file name.
    const bool lone = spec.find(',') == std::string_view::npos && spec.find(':') == std::string_view::npos;
    std::string_view rest = spec;
    for (unsigned n = 1;; ++n) {
      const auto comma = rest.find(',');
      const std::string_view t = trim(rest.substr(0, comma));
      where.push_back(fmt::format("entry {}", n));
      if (t.empty()) return make_error(errc::bad_format, fmt::format("host list '{}': entry {} is empty", spec, n));
      auto e = parse_entry(t, where.back());
      if (!e && lone)
        return make_error(errc::bad_format,
                          fmt::format("host list '{}' is neither a file nor HOST:PORT[,HOST:PORT...]", spec));
      if (!e) return e.error();
      out.push_back(std::move(*e));
      if (comma == std::string_view::npos) break;
      rest = rest.substr(comma + 1);
    }
  }
  if (out.empty()) return make_error(errc::invalid_argument, fmt::format("host list '{}' has no entries", spec));
  for (std::size_t i = 0; i < out.size(); ++i)
    for (std::size_t j = 0; j < i; ++j)
      if (out[i] == out[j])
        return make_error(errc::invalid_argument,
                          fmt::format("host list: {} and {} are both {}: each node needs its own port", where[j],
                                      where[i], out[i].text()));
  return out;
}

namespace detail {

result<std::unique_ptr<bootstrap>> open_host_list(bootstrap_role role, const bootstrap_options& options) {
  FERRY_TRY(auto hosts, parse_host_list(options.hosts));
  const auto n = static_cast<std::uint32_t>(hosts.size());
  if (role == bootstrap_role::node) {
    if (!options.index) return make_error(errc::invalid_argument, "a node started with a host list needs its index (--index)");
    if (*options.index >= n)
      return make_error(errc::invalid_argument,
                        fmt::format("node index {} outside the host list of {} entries", *options.index, n));
    auto b = std::make_unique<host_list_bootstrap>(std::move(hosts), role, *options.index);
    if (auto s = b->listen(); !s.ok()) return s;
    return std::unique_ptr<bootstrap>(std::move(b));
  }
  auto b = std::make_unique<host_list_bootstrap>(std::move(hosts), role, wire::kNoNode);
  if (auto s = b->claim(options.timeout); !s.ok()) return s;
  return std::unique_ptr<bootstrap>(std::move(b));
}

}  // namespace detail

}  // namespace ferry::cluster
