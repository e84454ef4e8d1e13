// The host-list bootstrap with real `ferry node` processes on loopback, each
// on its own bootstrap port, and client runtimes in this process over UCX
// tcp: joining, client indices, a node with a persistent store restarted (its
// clients learn through the other nodes; its objects are found again), and
// what goes wrong when a list is wrong.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <thread>

#include <fmt/format.h>

#include <ferry/runtime.hpp>

#include "bootstrap/bootstrap.hpp"
#include "bootstrap/host_list.hpp"
#include "directory/router.hpp"
#include "runtime/mobile.hpp"
#include "test_util.hpp"

using namespace ferry;
using namespace rt_test;

namespace {

// A loopback socket bound to a free port, listening or not.
struct held_port {
  int fd = -1;
  std::uint16_t port = 0;
  explicit held_port(bool listening) {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), len) == 0);
    if (listening) REQUIRE(::listen(fd, 4) == 0);
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    port = ntohs(a.sin_port);
  }
  ~held_port() { ::close(fd); }
};

// A port nobody listens on (free when this returns; nothing here binds it).
std::uint16_t free_port() { return held_port(false).port; }

struct host_list_cluster {
  static constexpr std::uint32_t kNodes = 2;
  test::temp_dir dir;
  std::string hosts;
  std::vector<std::unique_ptr<test::process>> nodes;

  host_list_cluster() {
    ferry::test::loopback_only();
    std::vector<std::string> entries;
    for (std::uint32_t i = 0; i < kNodes; ++i) entries.push_back(fmt::format("127.0.0.1:{}", free_port()));
    hosts = fmt::format("{}", fmt::join(entries, ","));
    for (std::uint32_t i = 0; i < kNodes; ++i) nodes.push_back(spawn(i, "jit"));
  }

  std::unique_ptr<test::process> spawn(std::uint32_t i, const std::string& cache) {
    return std::make_unique<test::process>(std::vector<std::string>{
        FERRY_CLI, "node", "--index", std::to_string(i), "--hosts", hosts, "--tls", "tcp", "--jit-cache",
        (dir.path() / cache).string(), "--store", (dir.path() / fmt::format("store{}", i)).string()});
  }

  std::unique_ptr<runtime> client(const std::string& list) const {
    runtime_options o;
    o.hosts = list;
    o.tls = "tcp";
    o.join_timeout = std::chrono::seconds(10);
    return std::make_unique<runtime>(o);
  }

  /// How joining with `list` fails (ok if it does not).
  result<void> join(const std::string& list) const {
    try {
      client(list);
    } catch (const error& e) {
      return e.status();
    }
    return {};
  }
};

}  // namespace

TEST_CASE("host list: nodes and clients find each other by bootstrap port, and a restarted node serves again") {
  host_list_cluster cl;
  auto rt = cl.client(cl.hosts);
  auto other = cl.client(cl.hosts);  // node 0 grants each client its own index
  CHECK(rt->member_index() >= host_list_cluster::kNodes);
  CHECK(other->member_index() >= host_list_cluster::kNodes);
  CHECK(rt->member_index() != other->member_index());
  REQUIRE(rt->nodes().size() == host_list_cluster::kNodes);
  for (std::uint32_t n = 0; n < host_list_cluster::kNodes; ++n) {
    auto c = cell_on(*rt, n, 10 * n);
    CHECK(rt->invoke(&add, c, 1).get() == 10 * n + 1);
    CHECK(rt->invoke(&where, c).get() == n);
    CHECK(other->invoke(&add, c, 2).get() == 10 * n + 2);  // objects are global
  }
  CHECK(rt->invoke(&sum_two, cell_on(*rt, 0, 30), cell_on(*rt, 1, 12)).get() == 42);

  // An object in node 1's persistent store whose directory entry is on node 0.
  ref<std::uint64_t> kept;
  for (int tries = 0; tries < 200 && (kept.id.is_nil() || directory::home_of(kept.id, host_list_cluster::kNodes) != 0);
       ++tries)
    kept = cell_on(*rt, 1, 500);
  REQUIRE(directory::home_of(kept.id, host_list_cluster::kNodes) == 0);

  // Node 1 restarts, three times. The host list keeps no client addresses:
  // node 0 passes node 1's hello on, and both clients reconnect to the new
  // process. (Every member connects back to it while handling its hello:
  // over UCX tcp that crashed a member in about one restart of three until
  // the transport deferred such endpoints, runtime/transport/ucx.cpp.)
  for (std::uint32_t incarnation = 2; incarnation <= 4; ++incarnation) {
    CAPTURE(incarnation);
    cl.nodes[1]->kill();
    cl.nodes[1] = cl.spawn(1, fmt::format("jit-{}", incarnation));
    for (auto* r : {rt.get(), other.get()})
      REQUIRE(test::eventually([&] { return r->nodes()[1].incarnation == incarnation && r->nodes()[1].alive; }));
    CHECK(rt->invoke(&add, cell_on(*rt, 1, 7), 1).get() == 8);
    CHECK(other->invoke(&sum_two, cell_on(*other, 0, 1), cell_on(*other, 1, 2)).get() == 3);
    // The store kept the object; the restarted node registered it with its
    // home again, which is where clients that forgot its owner now ask.
    CHECK(rt->invoke(&add, kept, 1).get() == 501);
    CHECK(other->invoke(&where, kept).get() == 1);
  }
}

TEST_CASE("host list: a list that does not match the nodes' is an invalid_argument naming the node") {
  host_list_cluster cl;
  const auto entries = REQUIRE_OK(cluster::parse_host_list(cl.hosts));
  // One entry more than the nodes were given.
  const auto longer = cl.join(fmt::format("{},127.0.0.1:{}", cl.hosts, free_port()));
  CHECK_ERRC(longer, errc::invalid_argument);
  CHECK(longer.error().message().find("same list") != std::string::npos);
  // The entries swapped: entry 0 is node 1, which does not grant member indices.
  const auto swapped = cl.join(fmt::format("{},{}", entries[1].text(), entries[0].text()));
  CHECK_ERRC(swapped, errc::invalid_argument);
  CHECK(swapped.error().message().find("node 0") != std::string::npos);
}

TEST_CASE("host list: nobody at the ports is a timeout naming the node and its address, a taken port an io_error") {
  const std::string nobody = fmt::format("127.0.0.1:{},127.0.0.1:{}", free_port(), free_port());
  cluster::bootstrap_options o;
  o.hosts = nobody;
  o.timeout = std::chrono::milliseconds(200);
  const auto t0 = std::chrono::steady_clock::now();
  const auto client = cluster::open_bootstrap(cluster::bootstrap_role::client, o);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(3));
  CHECK_ERRC(client, errc::timeout);
  CHECK(client.error().message().find(nobody.substr(0, nobody.find(','))) != std::string::npos);

  // Node 1 of that list waits for node 0 in vain.
  o.index = 1;
  auto node1 = REQUIRE_OK(cluster::open_bootstrap(cluster::bootstrap_role::node, o));
  REQUIRE_OK(node1->publish(std::vector<std::uint8_t>{1}));
  const auto addresses = node1->node_addresses(std::chrono::milliseconds(200));
  CHECK_ERRC(addresses, errc::timeout);
  CHECK(addresses.error().message().find("node 0") != std::string::npos);

  held_port taken(true);
  o.hosts = fmt::format("127.0.0.1:{}", taken.port);
  o.index = 0;
  CHECK_ERRC(cluster::open_bootstrap(cluster::bootstrap_role::node, o), errc::io_error);
}
