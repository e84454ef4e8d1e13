// Transport backends: in-process, and UCX and libfabric between two real
// processes (UCX shm and tcp on loopback; libfabric tcp;ofi_rxm and shm).
// Every wait is bounded.
#include <dlfcn.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <numeric>
#include <random>
#include <thread>

#include "test_util.hpp"
#include "transport/ofi_endpoint.hpp"
#include "transport/transport.hpp"

using namespace ferry;
namespace tp = ferry::transport;
using tp::options;
using tp::remote_region;
using clk = std::chrono::steady_clock;

namespace {

// Drive `t` until `done()` or the deadline; spin, then block on the fd.
bool drive_until(tp::transport& t, auto done, int timeout_ms = 10000) {
  const auto deadline = clk::now() + std::chrono::milliseconds(timeout_ms);
  int idle = 0;
  while (!done()) {
    if (clk::now() > deadline) return false;
    if (t.progress() > 0) {
      idle = 0;
      continue;
    }
    if (++idle > 1000 && t.arm()) {
      pollfd p{t.event_fd(), POLLIN, 0};
      ::poll(&p, 1, 10);
      idle = 0;
    }
  }
  return true;
}

std::vector<std::uint8_t> pattern(std::size_t n, std::uint8_t seed) {
  std::vector<std::uint8_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint8_t>(seed + i * 31);
  return v;
}

void send_blob(int fd, const std::vector<std::uint8_t>& b) {
  const std::uint32_t n = static_cast<std::uint32_t>(b.size());
  REQUIRE(::write(fd, &n, 4) == 4);
  REQUIRE(::write(fd, b.data(), n) == static_cast<ssize_t>(n));
}
std::vector<std::uint8_t> recv_blob(int fd) {
  std::uint32_t n = 0;
  if (::read(fd, &n, 4) != 4) return {};
  std::vector<std::uint8_t> b(n);
  std::size_t got = 0;
  while (got < n) {
    const ssize_t r = ::read(fd, b.data() + got, n - got);
    if (r <= 0) return {};
    got += static_cast<std::size_t>(r);
  }
  return b;
}

// Child process: an echo server with one registered 1 MiB region. It
// sends its address and region key, echoes every frame back (a frame of one
// byte 0xff means "stop"), then exits.
[[noreturn]] void echo_server(int sock, const options& opts) {
  auto t = tp::transport::create(opts);
  if (!t) _exit(20);
  std::vector<std::byte> region(1 << 20);
  for (std::size_t i = 0; i < region.size(); ++i) region[i] = static_cast<std::byte>(i % 251);
  auto mem = (*t)->register_memory(region);
  if (!mem) _exit(21);
  std::vector<std::uint8_t> hello = (*t)->address();
  send_blob(sock, hello);
  auto desc = (*mem)->describe();
  std::vector<std::uint8_t> key = desc.key;
  key.resize(key.size() + 16);
  std::memcpy(key.data() + desc.key.size(), &desc.address, 8);
  std::memcpy(key.data() + desc.key.size() + 8, &desc.length, 8);
  send_blob(sock, key);
  auto peer_addr = recv_blob(sock);
  auto peer = (*t)->connect(peer_addr);
  if (!peer) _exit(22);
  bool stop = false;
  (*t)->on_frame([&](std::span<const std::uint8_t> f) {
    if (f.size() == 1 && f[0] == 0xff) {
      stop = true;
      return;
    }
    (void)(*t)->send(*peer, {f.begin(), f.end()});
  });
  drive_until(**t, [&] { return stop; }, 60000);
  // Let the last echoes leave before tearing down.
  for (int i = 0; i < 1000; ++i) (*t)->progress();
  mem->reset();
  t->reset();  // a clean teardown leaves nothing in /dev/shm
  _exit(stop ? 0 : 23);
}

// Fork a child that runs `body` (it must not return) with its end of a
// socket pair; returns the child's pid and this process's end.
template <class Body>
std::pair<pid_t, int> fork_child(Body body) {
  int sv[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::close(sv[0]);
    body(sv[1]);
  }
  ::close(sv[1]);
  return {child, sv[0]};
}

// A forked child killed and reaped when the scope ends, unless `pid` was
// set to 0 first (reaped already: kill(0 or -1) would signal whole groups).
struct reaped_on_exit {
  pid_t pid;
  ~reaped_on_exit() {
    if (pid <= 0) return;
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }
};

// Can `fd` be read within `wait`?
bool readable_within(int fd, std::chrono::milliseconds wait) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, static_cast<int>(wait.count())) == 1;
}

// Fork a child that first runs `prepare` (where it writes errors, ...),
// then connects to `address` over `opts` and sends `bytes`-byte frames for
// ever, writing one byte to its socket after frame `after`. Returns its pid
// and whether it wrote that byte within 10 s (the socket is closed).
template <class Prepare>
std::pair<pid_t, bool> fork_sender(const options& opts, const std::vector<std::uint8_t>& address, std::size_t bytes,
                                   std::uint64_t after, Prepare prepare) {
  const auto [sender, sock] = fork_child([&](int fd) {
    prepare();
    auto t = tp::transport::create(opts);
    if (!t) _exit(20);
    auto peer = (*t)->connect(address);
    if (!peer) _exit(21);
    const std::vector<std::uint8_t> frame(bytes, 7);
    for (std::uint64_t i = 0;; ++i) {
      (void)(*t)->send(*peer, frame);
      (*t)->progress();
      if (i == after) {
        const char sending = 1;
        if (::write(fd, &sending, 1) != 1) _exit(22);
      }
    }
  });
  char sending = 0;
  const bool sends = readable_within(sock, std::chrono::seconds(10)) && ::read(sock, &sending, 1) == 1;
  ::close(sock);
  return {sender, sends};
}

// Read and drop what `fd` holds already (a child's old ticks).
void drain(int fd) {
  char buf[256];
  while (readable_within(fd, std::chrono::milliseconds(0)) && ::read(fd, buf, sizeof buf) > 0) {
  }
}

void two_processes(const options& opts) {
  ferry::test::loopback_only();
  const auto [child, sock] = fork_child([&](int fd) { echo_server(fd, opts); });
  reaped_on_exit reaper{child};

  auto t = REQUIRE_OK(tp::transport::create(opts));
  auto server_addr = recv_blob(sock);
  auto key_blob = recv_blob(sock);
  REQUIRE_FALSE(server_addr.empty());
  REQUIRE(key_blob.size() > 16);
  send_blob(sock, t->address());
  const auto peer = REQUIRE_OK(t->connect(server_addr));

  std::vector<std::vector<std::uint8_t>> received;
  t->on_frame([&](std::span<const std::uint8_t> f) { received.emplace_back(f.begin(), f.end()); });


  // Small frames, in order.
  for (std::uint8_t i = 0; i < 50; ++i) REQUIRE_OK(t->send(peer, pattern(8 + i, i)));
  REQUIRE(drive_until(*t, [&] { return received.size() == 50; }));
  for (std::uint8_t i = 0; i < 50; ++i) CHECK(received[i] == pattern(8 + i, i));

  // Large frames take the rendezvous path and still arrive whole, in order
  // with the small frames around them.
  received.clear();
  const auto big = pattern(4 << 20, 7);
  REQUIRE_OK(t->send(peer, pattern(8, 1)));
  REQUIRE_OK(t->send(peer, big));
  REQUIRE_OK(t->send(peer, pattern(40000, 2)));
  REQUIRE_OK(t->send(peer, big));
  REQUIRE_OK(t->send(peer, pattern(9, 3)));
  REQUIRE(drive_until(*t, [&] { return received.size() == 5; }, 30000));
  CHECK(received[0] == pattern(8, 1));
  CHECK(received[1] == big);
  CHECK(received[2] == pattern(40000, 2));
  CHECK(received[3] == big);
  CHECK(received[4] == pattern(9, 3));

  // Frames sent in two parts (a bulk frame's head and its data,
  // transport::send_parts) arrive joined, in order with whole frames: large
  // ones (which the UCX backend copies once, from both parts) and small ones.
  received.clear();
  const auto big_parts = pattern((2 << 20) + 77, 5);
  const auto small_parts = pattern(300, 6);
  const std::span<const std::uint8_t> big_view(big_parts), small_view(small_parts);
  REQUIRE_OK(t->send_parts(peer, big_view.first(40), big_view.subspan(40)));
  REQUIRE_OK(t->send(peer, pattern(8, 4)));
  REQUIRE_OK(t->send_parts(peer, small_view.first(20), small_view.subspan(20)));
  REQUIRE_OK(t->send_parts(peer, big_view.first(40), {}));  // no data: the head alone
  REQUIRE(drive_until(*t, [&] { return received.size() == 4; }, 30000));
  CHECK(received[0] == big_parts);
  CHECK(received[1] == pattern(8, 4));
  CHECK(received[2] == small_parts);
  CHECK(received[3] == std::vector<std::uint8_t>(big_parts.begin(), big_parts.begin() + 40));

  // A stream of chunk-sized frames, three at a time, each with its own
  // bytes: the backends send them from copies they keep and reuse
  // (libfabric's registered rendezvous copies, UCX's send copies), or, from
  // send_taking, from the caller's buffer (UCX), giving back one of theirs,
  // which the caller fills for its next frame; every frame arrives as it
  // was sent, not as an earlier one that used the buffer.
  std::vector<std::uint8_t> taken;
  for (std::uint8_t round = 0; round < 6; ++round) {
    received.clear();
    std::vector<std::vector<std::uint8_t>> sent;
    for (std::uint8_t k = 0; k < 3; ++k) {
      sent.push_back(pattern((1 << 20) + 64 + 8 * round + k, static_cast<std::uint8_t>(20 + 3 * round + k)));
      const std::span<const std::uint8_t> view(sent.back());
      if (k == 2) {
        taken.assign(view.begin(), view.end());
        REQUIRE_OK(t->send_taking(peer, taken));
      } else {
        REQUIRE_OK(k == 0 ? t->send(peer, view) : t->send_parts(peer, view.first(64), view.subspan(64)));
      }
    }
    REQUIRE(drive_until(*t, [&] { return received.size() == 3; }, 30000));
    CHECK(received[0] == sent[0]);
    CHECK(received[1] == sent[1]);
    CHECK(received[2] == sent[2]);
  }

  // A window of frames of every size class keeps its order.
  received.clear();
  for (std::uint8_t i = 0; i < 200; ++i) REQUIRE_OK(t->send(peer, pattern(i % 3 == 0 ? 20000 + i : 16 + i, i)));
  REQUIRE(drive_until(*t, [&] { return received.size() == 200; }, 30000));
  for (std::uint8_t i = 0; i < 200; ++i) CHECK(received[i] == pattern(i % 3 == 0 ? 20000 + i : 16 + i, i));

  // A burst sent without driving the transport in between (a node
  // answering at once every call it forwarded to a member that died):
  // every frame is taken, none refused as if the peer were dead, and all
  // arrive in order. Over tcp;ofi_rxm it overflows the provider's shared
  // transmit queue (2048) and ferry's per-peer queue takes the rest.
  received.clear();
  constexpr std::uint32_t kBurst = 5000;
  auto burst_frame = [](std::uint32_t i) {
    auto f = pattern(100, static_cast<std::uint8_t>(i));
    std::memcpy(f.data(), &i, sizeof i);
    return f;
  };
  for (std::uint32_t i = 0; i < kBurst; ++i) REQUIRE_OK(t->send(peer, burst_frame(i)));
  REQUIRE(drive_until(*t, [&] { return received.size() == kBurst; }, 30000));
  std::uint32_t in_order = 0;
  while (in_order < kBurst && received[in_order] == burst_frame(in_order)) ++in_order;
  CHECK(in_order == kBurst);

  // One-sided get from the server's registered region.
  remote_region region;
  region.key.assign(key_blob.begin(), key_blob.end() - 16);
  std::memcpy(&region.address, key_blob.data() + key_blob.size() - 16, 8);
  std::memcpy(&region.length, key_blob.data() + key_blob.size() - 8, 8);
  std::vector<std::byte> got(4096);
  REQUIRE_OK(t->get(peer, region, 1000, got, 10000));
  for (std::size_t i = 0; i < got.size(); ++i) REQUIRE(got[i] == static_cast<std::byte>((1000 + i) % 251));
  CHECK_ERRC(t->get(peer, region, region.length - 10, got, 1000), errc::out_of_bounds);
  CHECK_ERRC(t->send(peer + 5, pattern(8, 0)), errc::not_found);

  REQUIRE_OK(t->send(peer, std::vector<std::uint8_t>{0xff}));
  for (int i = 0; i < 1000; ++i) t->progress();
  int wstatus = -1;
  for (int i = 0; i < 500 && ::waitpid(child, &wstatus, WNOHANG) == 0; ++i) {
    t->progress();
    ::usleep(10000);
  }
  CHECK(WIFEXITED(wstatus));
  CHECK(WEXITSTATUS(wstatus) == 0);
  reaper.pid = 0;
}

}  // namespace

// The first case of this file, so that it starts in a process that has not
// opened libfabric, whether ctest runs it alone or the whole binary runs.
TEST_CASE("transport: libfabric is loaded by the first libfabric endpoint, and its loading keeps the process's signal handlers") {
  const auto loaded = [] {
    void* lib = ::dlopen("libfabric.so.1", RTLD_LAZY | RTLD_NOLOAD);
    if (lib != nullptr) ::dlclose(lib);  // drops only the reference NOLOAD took
    return lib != nullptr;
  };
  // Linked, libfabric's psm provider would have slept 200 ms before main
  // and set handlers for SIGINT and SIGTERM that call exit().
  REQUIRE_FALSE(loaded());
  struct sigaction own {};
  own.sa_handler = +[](int) {};
  sigemptyset(&own.sa_mask);
  struct sigaction old_term {};
  REQUIRE(::sigaction(SIGTERM, &own, &old_term) == 0);
  constexpr std::array kWatched = {SIGINT, SIGTERM, SIGSEGV, SIGBUS, SIGILL, SIGABRT};
  std::array<struct sigaction, kWatched.size()> before{};
  for (std::size_t i = 0; i < kWatched.size(); ++i) ::sigaction(kWatched[i], nullptr, &before[i]);

  auto ucx = REQUIRE_OK(tp::transport::create({.kind = "ucx", .tls = "shm", .provider = {}, .link = {}}));
  CHECK_FALSE(loaded());  // other transports leave it alone
  auto t = REQUIRE_OK(tp::transport::create({.kind = "ofi", .tls = {}, .provider = "tcp;ofi_rxm", .link = {}}));
  CHECK(loaded());
  CHECK(t->name() == "ofi/tcp;ofi_rxm");
  for (std::size_t i = 0; i < kWatched.size(); ++i) {
    struct sigaction now {};
    ::sigaction(kWatched[i], nullptr, &now);
    INFO("signal ", kWatched[i]);
    CHECK(reinterpret_cast<void*>(now.sa_handler) == reinterpret_cast<void*>(before[i].sa_handler));
    CHECK(now.sa_flags == before[i].sa_flags);
  }
  ::sigaction(SIGTERM, &old_term, nullptr);
}

TEST_CASE("transport: inproc frames, large frames, get, dead peer") {
  auto a = REQUIRE_OK(tp::transport::create(options{.kind = "inproc", .tls = {}, .provider = {}, .link = {}}));
  auto b = REQUIRE_OK(tp::transport::create(options{.kind = "inproc", .tls = {}, .provider = {}, .link = {}}));
  const auto a_to_b = REQUIRE_OK(a->connect(b->address()));
  const auto b_to_a = REQUIRE_OK(b->connect(a->address()));
  std::vector<std::vector<std::uint8_t>> at_a;
  b->on_frame([&](std::span<const std::uint8_t> f) { (void)b->send(b_to_a, {f.begin(), f.end()}); });
  a->on_frame([&](std::span<const std::uint8_t> f) { at_a.emplace_back(f.begin(), f.end()); });
  REQUIRE_OK(a->send(a_to_b, pattern(100, 1)));
  REQUIRE_OK(a->send(a_to_b, pattern(1 << 20, 2)));
  CHECK(b->arm() == false);  // frames pending: must not block
  CHECK(b->progress() == 2);
  CHECK(a->progress() == 2);
  REQUIRE(at_a.size() == 2);
  CHECK(at_a[0] == pattern(100, 1));
  CHECK(at_a[1] == pattern(1 << 20, 2));
  CHECK(a->arm() == true);
  const auto parts = pattern(5000, 3);  // sent as a head and its data, echoed joined
  REQUIRE_OK(a->send_parts(a_to_b, std::span(parts).first(100), std::span(parts).subspan(100)));
  CHECK(b->progress() == 1);
  CHECK(a->progress() == 1);
  REQUIRE(at_a.size() == 3);
  CHECK(at_a[2] == parts);

  std::vector<std::byte> mem(64, std::byte{9});
  auto reg = REQUIRE_OK(b->register_memory(mem));
  std::vector<std::byte> out(8);
  REQUIRE_OK(a->get(a_to_b, reg->describe(), 56, out, 100));
  CHECK(out[0] == std::byte{9});
  CHECK_ERRC(a->get(a_to_b, reg->describe(), 60, out, 100), errc::out_of_bounds);

  CHECK_ERRC(a->connect(std::vector<std::uint8_t>{1, 2, 3}), errc::bad_format);
  b.reset();
  CHECK_ERRC(a->send(a_to_b, pattern(8, 0)), errc::peer_dead);
  CHECK_ERRC(tp::transport::create(options{.kind = "carrier-pigeon", .tls = {}, .provider = {}, .link = {}}), errc::unsupported);
}

TEST_CASE("transport: UCX between two processes over shm") { two_processes({.kind = "ucx", .tls = "shm", .provider = {}, .link = {}}); }
TEST_CASE("transport: UCX between two processes over tcp (loopback)") { two_processes({.kind = "ucx", .tls = "tcp", .provider = {}, .link = {}}); }
TEST_CASE("transport: libfabric between two processes over tcp (ofi_rxm)") {
  two_processes({.kind = "ofi", .tls = {}, .provider = "tcp;ofi_rxm", .link = {}});
}
TEST_CASE("transport: libfabric between two processes over shm") { two_processes({.kind = "ofi", .tls = {}, .provider = "shm", .link = {}}); }

TEST_CASE("transport: libfabric names its provider, rejects bad addresses and unknown providers") {
  auto t = REQUIRE_OK(tp::transport::create({.kind = "ofi", .tls = {}, .provider = "shm", .link = {}}));
  CHECK(t->name() == "ofi/shm");
  CHECK_ERRC(t->connect(std::vector<std::uint8_t>{}), errc::bad_format);
  // Another backend's or provider's address is refused before the library sees it.
  auto tcp = REQUIRE_OK(tp::transport::create({.kind = "ofi", .tls = {}, .provider = "tcp;ofi_rxm", .link = {}}));
  auto ucx = REQUIRE_OK(tp::transport::create({.kind = "ucx", .tls = "shm", .provider = {}, .link = {}}));
  CHECK_ERRC(t->connect(tcp->address()), errc::bad_format);
  CHECK_ERRC(t->connect(ucx->address()), errc::bad_format);
  CHECK_ERRC(ucx->connect(t->address()), errc::bad_format);
  CHECK_ERRC(ucx->connect(std::vector<std::uint8_t>{200, 1, 2}), errc::bad_format);
  CHECK_ERRC(t->send(0, pattern(8, 0)), errc::not_found);
  CHECK_ERRC(tp::transport::create({.kind = "ofi", .tls = {}, .provider = "no-such-provider", .link = {}}), errc::io_error);
}

// The emulated link of a device node (options::link_profile, shaped.cpp).
namespace {

// Send `frames` from a (shaped) to b (plain), which echoes them; drive both
// until every echo is back. The milliseconds that took, and what came back.
std::pair<double, std::vector<std::vector<std::uint8_t>>> echo_through(const options::link_profile& link,
                                                                       const std::vector<std::vector<std::uint8_t>>& frames) {
  options shaped{.kind = "inproc", .tls = {}, .provider = {}, .link = {}};
  shaped.link = link;
  auto a = REQUIRE_OK(tp::transport::create(shaped));
  auto b = REQUIRE_OK(tp::transport::create(options{.kind = "inproc", .tls = {}, .provider = {}, .link = {}}));
  const auto a_to_b = REQUIRE_OK(a->connect(b->address()));
  const auto b_to_a = REQUIRE_OK(b->connect(a->address()));
  std::vector<std::vector<std::uint8_t>> back;
  b->on_frame([&](std::span<const std::uint8_t> f) { (void)b->send(b_to_a, {f.begin(), f.end()}); });
  a->on_frame([&](std::span<const std::uint8_t> f) { back.emplace_back(f.begin(), f.end()); });
  const auto t0 = clk::now();
  for (const auto& f : frames) REQUIRE_OK(a->send(a_to_b, f));
  const auto deadline = t0 + std::chrono::seconds(20);
  while (back.size() < frames.size() && clk::now() < deadline) {
    if (a->progress() + b->progress() > 0) continue;
    if (a->arm()) {  // nothing due: block until the link's timer (or a frame) wakes us
      pollfd p{a->event_fd(), POLLIN, 0};
      ::poll(&p, 1, 5);
    }
  }
  return {std::chrono::duration<double, std::milli>(clk::now() - t0).count(), std::move(back)};
}

}  // namespace

TEST_CASE("transport: an emulated link delays frames both ways, keeps their order, and wakes a blocked driver") {
  const std::vector<std::vector<std::uint8_t>> frames{pattern(100, 1), pattern(1 << 16, 2), pattern(8, 3)};
  SUBCASE("latency: a round trip crosses the link twice") {
    const auto [ms, back] = echo_through({.latency = std::chrono::milliseconds(20), .bytes_per_second = 0}, frames);
    CHECK(back == frames);
    CHECK(ms >= 40.0);  // a lower bound only: a loaded machine may take longer
    MESSAGE("3 frames through a 20 ms link and back: " << ms << " ms");
  }
  SUBCASE("rate: each frame takes size / rate on the link, each way") {
    const std::vector<std::vector<std::uint8_t>> big{pattern(50000, 4), pattern(50000, 5)};
    const auto [ms, back] = echo_through({.latency = std::chrono::microseconds(0), .bytes_per_second = 1000000}, big);
    CHECK(back == big);
    // Each 50000 B frame occupies a 1 MB/s link for 50 ms, each way: the
    // second leaves at 50 ms and is back at 150 ms (full duplex: its way
    // out overlaps the first one's way back).
    CHECK(ms >= 149.0);
  }
  SUBCASE("an idle shaped transport blocks until a held frame is due") {
    options shaped{.kind = "inproc", .tls = {}, .provider = {}, .link = {}};
    shaped.link.latency = std::chrono::milliseconds(30);
    auto a = REQUIRE_OK(tp::transport::create(shaped));
    auto b = REQUIRE_OK(tp::transport::create(options{.kind = "inproc", .tls = {}, .provider = {}, .link = {}}));
    const auto a_to_b = REQUIRE_OK(a->connect(b->address()));
    int at_b = 0;
    b->on_frame([&](std::span<const std::uint8_t>) { ++at_b; });
    const auto t0 = clk::now();
    REQUIRE_OK(a->send(a_to_b, pattern(8, 0)));
    CHECK(a->progress() == 0);  // held: not due yet
    REQUIRE(a->arm());
    pollfd p{a->event_fd(), POLLIN, 0};
    REQUIRE(::poll(&p, 1, 10000) == 1);  // the link's timer woke us
    CHECK(clk::now() - t0 >= std::chrono::milliseconds(29));
    CHECK(a->progress() == 1);
    CHECK(b->progress() == 1);
    CHECK(at_b == 1);
  }
}

// The shm provider keeps each endpoint in a /dev/shm file; a killed process
// cannot remove its own, so the next ferry shm endpoint here removes it.
TEST_CASE("transport: libfabric shm leaves nothing in /dev/shm, even after a kill -9") {
  const auto [child, sock] = fork_child([](int fd) {
    auto t = tp::transport::create({.kind = "ofi", .tls = {}, .provider = "shm", .link = {}});
    if (!t) _exit(20);
    send_blob(fd, (*t)->address());
    ::pause();  // until killed
    _exit(0);
  });
  auto address = recv_blob(sock);
  ::close(sock);
  REQUIRE_FALSE(address.empty());
  // The endpoint's name, NUL-terminated, after the backend's tag.
  const auto raw = REQUIRE_OK(tp::untag_address("ofi/shm", address));
  const std::string name(reinterpret_cast<const char*>(raw.data()));
  CHECK(name.starts_with("ferry-" + std::to_string(child) + "-"));
  const std::filesystem::path file = std::filesystem::path("/dev/shm") / name;
  CHECK(std::filesystem::exists(file));
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  CHECK(std::filesystem::exists(file));  // what a killed process leaves

  std::filesystem::path own;
  {
    auto t = REQUIRE_OK(tp::transport::create({.kind = "ofi", .tls = {}, .provider = "shm", .link = {}}));
    CHECK_FALSE(std::filesystem::exists(file));  // removed by the next endpoint
    const auto a = t->address();
    own = std::filesystem::path("/dev/shm") / reinterpret_cast<const char*>(REQUIRE_OK(tp::untag_address("ofi/shm", a)).data());
    CHECK(std::filesystem::exists(own));
  }
  CHECK_FALSE(std::filesystem::exists(own));  // a clean teardown removes its own
}

// libfabric 1.17's shm provider: a sender killed while it held the
// receiver's queue lock (while it sent) leaves that lock held for good. The
// receiver then spins inside libfabric for ever once it is told a message
// came, and so does every later sender to it. The transport's watchdog ends
// such a process with SIGABRT and the reason (ofi_endpoint.hpp,
// stuck_call_watch). Here senders blast frames at a receiver (which ticks
// over its socket every 50 ms while it progresses) and are killed one after
// another, until the receiver or the next sender is stuck (here within the
// first few kills); each process writes its stderr to a file.
TEST_CASE("transport: a libfabric shm process stuck on a lock a killed sender held aborts with the reason") {
  ferry::test::temp_dir dir;
  auto err_file = [&](const std::string& who) { return dir.path() / (who + ".err"); };
  auto say_to = [](const std::filesystem::path& file) {
    ::signal(SIGABRT, SIG_DFL);  // not doctest's handler: the parent reads the signal
    const int err = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (err < 0 || ::dup2(err, STDERR_FILENO) < 0) _exit(19);
  };
  // Every shm endpoint here gives up after 2 s inside a call.
  const ferry::test::scoped_env stuck_after("FERRY_OFI_STUCK_SECONDS", "2");
  const auto [receiver, rsock] = fork_child([&](int fd) {
    say_to(err_file("receiver"));
    auto t = tp::transport::create({.kind = "ofi", .tls = {}, .provider = "shm", .link = {}});
    if (!t) _exit(20);
    (*t)->on_frame([](std::span<const std::uint8_t>) {});
    send_blob(fd, (*t)->address());
    auto last_tick = clk::now();
    for (;;) {  // until it aborts or is killed
      (*t)->progress();
      if (clk::now() - last_tick > std::chrono::milliseconds(50)) {
        last_tick = clk::now();
        const char tick = 1;
        if (::write(fd, &tick, 1) != 1) _exit(21);
      }
    }
  });
  reaped_on_exit reaper{receiver};
  const auto address = recv_blob(rsock);
  REQUIRE_FALSE(address.empty());
  // Does the receiver still tick? (Ticks sent already are drained first.)
  auto receiver_ticks = [rsock = rsock] {
    drain(rsock);
    return readable_within(rsock, std::chrono::milliseconds(500));
  };
  // A child's end: 0 if it has not ended within `wait`, else its status.
  auto ended_within = [](pid_t pid, std::chrono::milliseconds wait, int& status) {
    for (auto until = clk::now() + wait; clk::now() < until; std::this_thread::sleep_for(std::chrono::milliseconds(50)))
      if (::waitpid(pid, &status, WNOHANG) == pid) return true;
    return false;
  };
  std::string stuck;  // who aborted: "receiver" or "sender-N"
  int status = 0, kills = 0;
  std::mt19937 random(2026);
  while (stuck.empty() && kills < 50) {
    const std::string name = "sender-" + std::to_string(kills + 1);
    const auto [sender, sends] = fork_sender({.kind = "ofi", .tls = {}, .provider = "shm", .link = {}}, address, 64,
                                             1000, [&] { say_to(err_file(name)); });
    if (!sends) {  // stuck before its 1000th frame: the lock is held, and its watchdog ended it
      const bool ended = ended_within(sender, std::chrono::seconds(1), status);
      if (!ended) {
        ::kill(sender, SIGKILL);
        ::waitpid(sender, nullptr, 0);
      }
      REQUIRE_MESSAGE(ended, name << " neither sent nor ended");
      stuck = name;
      break;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(random() % 2000));
    ::kill(sender, SIGKILL);
    ::waitpid(sender, nullptr, 0);
    ++kills;
    if (receiver_ticks()) continue;  // still serving: the kill missed the lock, or it was not told yet
    REQUIRE_MESSAGE(ended_within(receiver, std::chrono::seconds(5), status), "the receiver stopped, and did not end");
    reaper.pid = 0;
    stuck = "receiver";
  }
  ::close(rsock);
  MESSAGE(stuck << " was stuck after " << kills << " kill(s) of a sender");
  REQUIRE_FALSE(stuck.empty());
  CHECK(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGABRT);
  std::ifstream in(err_file(stuck));
  const std::string said((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(said.find("ofi/shm has been inside a libfabric call for 2 s") != std::string::npos);
  CHECK(said.find("A peer that dies") != std::string::npos);
}

// UCX's shared-memory transport gives each process one receive queue that
// every sender writes into; a sender killed between claiming an element and
// marking it written leaves the receiver waiting on that element for good
// (docs/transports.md, "A peer that dies"). Here senders blast frames at a
// receiver and are killed one after another until one kill deafens it (the
// next sender's frames stop arriving); the receiver's transport must then
// say so (transport::deaf()) within seconds. The receiver ticks over its
// socket every 50 ms, 1 when frames arrived since the last tick, and writes
// what deaf() says to a file when it says anything.
TEST_CASE("transport: a UCX shm process deafened by a sender killed in the middle of a send knows it") {
  ferry::test::temp_dir dir;
  const auto said_file = dir.path() / "receiver.deaf";
  const auto [receiver, rsock] = fork_child([&](int fd) {
    auto t = tp::transport::create({.kind = "ucx", .tls = "shm", .provider = {}, .link = {}});
    if (!t) _exit(20);
    std::uint64_t frames = 0;
    (*t)->on_frame([&](std::span<const std::uint8_t>) { ++frames; });
    send_blob(fd, (*t)->address());
    auto last_tick = clk::now();
    std::uint64_t ticked_at = 0;
    for (const auto until = clk::now() + std::chrono::seconds(120); clk::now() < until;) {
      (*t)->progress();
      if (const auto why = (*t)->deaf(); !why.empty()) {
        std::ofstream(said_file) << why;
        _exit(42);
      }
      if (clk::now() - last_tick > std::chrono::milliseconds(50)) {
        last_tick = clk::now();
        const char tick = frames != ticked_at ? 1 : 0;
        ticked_at = frames;
        if (::write(fd, &tick, 1) != 1) _exit(21);
      }
    }
    _exit(22);
  });
  reaped_on_exit reaper{receiver};
  const auto address = recv_blob(rsock);
  REQUIRE_FALSE(address.empty());
  // Did frames reach the receiver in the last 300 ms? (Older ticks are drained first.)
  auto receiver_hears = [rsock = rsock] {
    drain(rsock);
    bool heard = false;
    for (auto until = clk::now() + std::chrono::milliseconds(300); !heard && clk::now() < until;) {
      char tick = 0;
      if (readable_within(rsock, std::chrono::milliseconds(100)) && ::read(rsock, &tick, 1) == 1) heard |= tick == 1;
    }
    return heard;
  };
  // Four senders at a time, each killed at a random moment; then the
  // receiver must still hear the next four.
  constexpr int kSenders = 4;
  int kills = 0;
  bool deafened = false;
  std::mt19937 random(2026);
  while (!deafened && kills < 400) {
    std::vector<pid_t> senders;
    bool all_send = true;
    for (int k = 0; k < kSenders; ++k) {
      // 6000-byte frames are copied into the queue's element: a wider window.
      const auto [sender, sends] = fork_sender({.kind = "ucx", .tls = "shm", .provider = {}, .link = {}}, address,
                                               6000, 200, [] {});
      all_send &= sends;
      senders.push_back(sender);
    }
    if (all_send && !receiver_hears()) deafened = true;  // by the last kills: these senders' frames do not arrive
    for (const pid_t sender : senders) {
      if (!deafened) std::this_thread::sleep_for(std::chrono::microseconds(random() % 1000));
      ::kill(sender, SIGKILL);
      ::waitpid(sender, nullptr, 0);
      if (!deafened) ++kills;
    }
    REQUIRE(all_send);
  }
  MESSAGE("the receiver was deaf after " << kills << " kill(s) of a sender");
  REQUIRE(deafened);
  int status = 0;
  const auto until = clk::now() + std::chrono::seconds(10);
  while (::waitpid(receiver, &status, WNOHANG) != receiver && clk::now() < until)  // reading its ticks: no SIGPIPE
    if (readable_within(rsock, std::chrono::milliseconds(50))) drain(rsock);
  ::close(rsock);
  REQUIRE_MESSAGE(clk::now() < until, "the deaf receiver did not notice within 10 s");
  reaper.pid = 0;
  CHECK_MESSAGE(WIFEXITED(status), "ended by signal " << (WIFSIGNALED(status) ? WTERMSIG(status) : 0));
  CHECK(WEXITSTATUS(status) == 42);
  std::ifstream in(said_file);
  const std::string said((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(said.find("receive queue is stuck") != std::string::npos);
  CHECK(said.find("A peer that dies") != std::string::npos);
}

// What the transport runs from inside progress() that is not libfabric's
// (the frame handler: a node may run a mobile call in place there, for as
// long as it takes) is not a stuck libfabric call. In a child, whose
// watchdog starts with its first endpoint and so reads the 1 s limit.
TEST_CASE("transport: a frame handler that runs long inside progress() is not a stuck libfabric call") {
  const ferry::test::scoped_env stuck_after("FERRY_OFI_STUCK_SECONDS", "1");
  const auto [child, sock] = fork_child([](int) {
    ::signal(SIGABRT, SIG_DFL);
    auto a = tp::transport::create({.kind = "ofi", .tls = {}, .provider = "shm", .link = {}});
    auto b = tp::transport::create({.kind = "ofi", .tls = {}, .provider = "shm", .link = {}});
    if (!a || !b) _exit(20);
    int handled = 0;
    (*b)->on_frame([&](std::span<const std::uint8_t>) {
      ++handled;
      std::this_thread::sleep_for(std::chrono::milliseconds(2500));  // 2.5x the limit, no libfabric call
    });
    auto to_b = (*a)->connect((*b)->address());
    if (!to_b || !(*a)->send(*to_b, std::vector<std::uint8_t>(64, 1))) _exit(21);
    for (auto until = clk::now() + std::chrono::seconds(5); handled == 0 && clk::now() < until;) {
      (*a)->progress();
      (*b)->progress();
    }
    _exit(handled == 1 ? 0 : 22);
  });
  ::close(sock);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  CHECK_FALSE(WIFSIGNALED(status));  // SIGABRT: the watchdog took the handler for libfabric
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

// A process stopped (SIGSTOP, a debugger) for longer than the limit while
// one of its threads was inside a libfabric call is not stuck: once it is
// continued, the call returns. The watchdog, which had seen the call inside
// before the stop, looks at once on resume, before the call can return:
// it must watch it afresh rather than count the stop against it.
TEST_CASE("transport: a process stopped inside a libfabric call and continued is not taken for stuck") {
  const ferry::test::scoped_env stuck_after("FERRY_OFI_STUCK_SECONDS", "2");
  const auto [child, sock] = fork_child([](int fd) {
    ::signal(SIGABRT, SIG_DFL);
    tp::ofi::stuck_call_watch watch("a test's stand-in for an endpoint");
    {
      const tp::ofi::stuck_call_watch::guard inside(watch);  // "inside a libfabric call"
      if (::write(fd, "i", 1) != 1) _exit(20);
      // Until the clock jumps (the stop), then 1.5 s more: past the
      // watchdog's first look after the stop, within the limit after it.
      for (auto last = clk::now();;) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        const auto now = clk::now();
        if (now - last > std::chrono::seconds(2)) break;
        last = now;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    }
    _exit(0);
  });
  char inside = 0;
  REQUIRE(::read(sock, &inside, 1) == 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // the watchdog has seen the call inside
  REQUIRE(::kill(child, SIGSTOP) == 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(3500));  // longer than the limit
  REQUIRE(::kill(child, SIGCONT) == 0);
  ::close(sock);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  CHECK_FALSE(WIFSIGNALED(status));  // SIGABRT: the stop was counted as time stuck
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

// Several runtimes in one process (the soak's clients) open their shm
// endpoints at the same moment: none may take another's file for stale, or
// peers that map it later find nothing (libfabric 1.17's shm provider then
// crashes in fi_cq_read).
TEST_CASE("transport: libfabric shm endpoints opened at once by one process keep each other's files") {
  constexpr int kEndpoints = 8;
  for (int round = 0; round < 5; ++round) {
    CAPTURE(round);
    std::vector<std::unique_ptr<tp::transport>> made(kEndpoints);
    std::atomic<int> ready{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < kEndpoints; ++i)
      threads.emplace_back([&, i] {
        ready.fetch_add(1);
        while (ready.load() < kEndpoints) std::this_thread::yield();
        if (auto t = tp::transport::create({.kind = "ofi", .tls = {}, .provider = "shm", .link = {}})) made[i] = std::move(*t);
      });
    for (auto& t : threads) t.join();
    for (const auto& t : made) {
      REQUIRE(t != nullptr);
      const auto a = t->address();
      const std::filesystem::path file =
          std::filesystem::path("/dev/shm") / reinterpret_cast<const char*>(REQUIRE_OK(tp::untag_address("ofi/shm", a)).data());
      CHECK(std::filesystem::exists(file));
    }
  }
}

// A node answers a hello as it arrives: it connects back to the sender from
// inside its frame handler and replies at once. Each round a new process says
// hello and is then killed, as restarted nodes are. UCX 1.13's tcp transport
// crashed the answering process in about one restart of three when the
// endpoint was created inside UCX's callback (ucx.cpp, deferred_peer).
namespace {

void answers_hellos_from_restarted_peers(const options& opts) {
  ferry::test::loopback_only();
  auto t = REQUIRE_OK(tp::transport::create(opts));
  std::vector<tp::peer_index> answered;
  std::string failed;  // a failure inside the handler, told after it returns (a throw through UCX's frames aborts)
  t->on_frame([&](std::span<const std::uint8_t> hello) {
    // The hello is the sender's address: connect back and welcome it.
    auto peer = t->connect(hello);
    if (!peer) {
      failed += "connect back to hello " + std::to_string(answered.size()) + ": " + peer.error().describe() + "\n";
      return;
    }
    if (auto sent = t->send(*peer, std::vector<std::uint8_t>{'W', static_cast<std::uint8_t>(answered.size())}); !sent)
      failed += "welcome " + std::to_string(answered.size()) + ": " + sent.error().describe() + "\n";
    answered.push_back(*peer);
  });
  const auto own = t->address();
  constexpr int kRounds = 12;
  for (int round = 0; round < kRounds; ++round) {
    CAPTURE(round);
    const auto [child, sock] = fork_child([&](int fd) {
      auto c = tp::transport::create(opts);
      if (!c) _exit(20);
      auto server = (*c)->connect(own);
      if (!server) _exit(21);
      int welcome = -1;
      (*c)->on_frame([&](std::span<const std::uint8_t> f) {
        if (f.size() == 2 && f[0] == 'W') welcome = f[1];
      });
      if (!(*c)->send(*server, (*c)->address())) _exit(22);
      if (!drive_until(**c, [&] { return welcome >= 0; })) _exit(23);
      const std::vector<std::uint8_t> got{static_cast<std::uint8_t>(welcome)};
      send_blob(fd, got);
      for (;;) (*c)->progress();  // keep the connection busy until killed
    });
    pollfd p{sock, POLLIN, 0};
    const bool heard = drive_until(*t, [&] { return ::poll(&p, 1, 0) > 0 || !failed.empty(); });
    REQUIRE_MESSAGE(failed.empty(), failed);
    if (!heard) {
      int wstatus = 0;
      const bool ended = ::waitpid(child, &wstatus, WNOHANG) == child;
      ::kill(child, SIGKILL);
      if (!ended) ::waitpid(child, &wstatus, 0);
      FAIL("round " << round << ": no welcome within 10 s; the peer "
                    << (ended ? (WIFEXITED(wstatus) ? "exited with " + std::to_string(WEXITSTATUS(wstatus))
                                                    : "ended by signal " + std::to_string(WTERMSIG(wstatus)))
                              : std::string("still waited"))
                    << " (20: no transport, 21: no connect, 22: hello not sent, 23: no welcome in 10 s)");
    }
    const auto welcome = recv_blob(sock);
    ::close(sock);
    ::kill(child, SIGKILL);
    int wstatus = 0;
    ::waitpid(child, &wstatus, 0);
    REQUIRE(welcome.size() == 1);
    CHECK(welcome[0] == round);  // the answer to this round's hello
    CHECK(answered.size() == static_cast<std::size_t>(round + 1));
    // Let the dead peer's connection fail while the next one is set up.
    drive_until(*t, [] { return false; }, 20);
  }
  CHECK(answered.size() == kRounds);
}

}  // namespace

TEST_CASE("transport: UCX tcp answers hellos from inside its handler, peer after restarted peer") {
  answers_hellos_from_restarted_peers({.kind = "ucx", .tls = "tcp", .provider = {}, .link = {}});
}
TEST_CASE("transport: UCX shm answers hellos from inside its handler, peer after restarted peer") {
  answers_hellos_from_restarted_peers({.kind = "ucx", .tls = "shm", .provider = {}, .link = {}});
}
TEST_CASE("transport: libfabric tcp answers hellos from inside its handler, peer after restarted peer") {
  answers_hellos_from_restarted_peers({.kind = "ofi", .tls = {}, .provider = "tcp;ofi_rxm", .link = {}});
}
TEST_CASE("transport: libfabric shm answers hellos from inside its handler, peer after restarted peer") {
  answers_hellos_from_restarted_peers({.kind = "ofi", .tls = {}, .provider = "shm", .link = {}});
}
