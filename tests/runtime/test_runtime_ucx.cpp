// Real `ferry node` processes over UCX (shm, and tcp on loopback), a client
// runtime in this process: invoke, forward across processes, nested calls,
// a node killed in the middle of a call, and a node restarted with the same
// index.
#include <chrono>
#include <cstdlib>
#include <memory>
#include <numeric>
#include <random>
#include <thread>

#include <ferry/runtime.hpp>

#include <fmt/format.h>

#include "cluster/rendezvous.hpp"
#include "directory/directory.hpp"
#include "mobile.hpp"
#include "test_util.hpp"

using namespace ferry;
using namespace rt_test;

namespace {

struct ucx_cluster {
  static constexpr std::uint32_t kNodes = 3;
  test::temp_dir dir;
  std::string tls;
  std::vector<std::unique_ptr<test::process>> nodes;  // stopped after the runtime goes
  std::unique_ptr<runtime> rt;

  explicit ucx_cluster(std::string tls_) : tls(std::move(tls_)) {
    ::setenv("UCX_NET_DEVICES", "lo", 1);
    cluster::rendezvous rv(dir.path() / "rv");
    REQUIRE_OK(rv.init(kNodes));
    for (std::uint32_t i = 0; i < kNodes; ++i) nodes.push_back(spawn(i, "jit"));
    runtime_options o;
    o.rendezvous = dir.path() / "rv";
    o.transport = "ucx";
    o.tls = tls;
    rt = std::make_unique<runtime>(o);
  }

  // A `ferry node` process for index i, with its JIT's disk cache in `cache`.
  std::unique_ptr<test::process> spawn(std::uint32_t i, const std::string& cache) {
    return std::make_unique<test::process>(std::vector<std::string>{
        FERRY_CLI, "node", "--index", std::to_string(i), "--rendezvous", (dir.path() / "rv").string(), "--transport",
        "ucx", "--tls", tls, "--jit-cache", (dir.path() / cache).string()});
  }

  ref<std::uint64_t> cell_on(std::uint32_t node, std::uint64_t value) { return rt_test::cell_on(*rt, node, value); }

  void exercise() {
    for (std::uint32_t n = 0; n < kNodes; ++n) {
      auto c = cell_on(n, 100 * n);
      CHECK(rt->invoke(&add, c, 5).get() == 100 * n + 5);
      CHECK(rt->invoke(&where, c).get() == n);
    }
    CHECK(rt->invoke(&sum_two, cell_on(0, 30), cell_on(2, 12)).get() == 42);

    const auto t = make_chase_table(*rt, 999, 11);
    for (std::uint32_t depth : {1u, 16u, 64u, 1024u})
      CHECK(rt->invoke(&chase, t.shards[1], 5, depth).get() == chase_locally(t.next.data(), 5, depth));
  }

  // Wait (at most 10 s) until this runtime's view of node i satisfies `ok`.
  template <class Pred>
  bool wait_for_node(std::uint32_t i, Pred ok) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    for (; std::chrono::steady_clock::now() < until; std::this_thread::sleep_for(std::chrono::milliseconds(2)))
      if (ok(rt->nodes()[i])) return true;
    return false;
  }

  // Node 1 killed and restarted with the same index, twice: first before
  // anyone noticed it was gone (its hello brings a new address), then after
  // its silence got it declared dead. Each incarnation starts with an empty
  // memory store and an empty JIT cache directory, so code must reach it
  // again: pushed by this client (which forgets what it pushed to the old
  // process), or pulled by the node from whoever forwarded a call to it.
  void restart_node() {
    constexpr std::uint32_t r = 1;
    const auto local = cell_on(0, 42);
    ref<std::uint64_t> homed;  // on node 2, its directory entry on node r (its home)
    for (int tries = 0; tries < 200 && (homed.id.is_nil() || directory::home_of(homed.id, kNodes) != r); ++tries)
      homed = cell_on(2, 58);
    REQUIRE(directory::home_of(homed.id, kNodes) == r);
    CHECK(rt->invoke(&sum_two, local, homed).get() == 100);
    const auto before = cell_on(r, 41);
    CHECK(rt->invoke(&add, before, 1).get() == 42);
    REQUIRE(rt->nodes()[r].incarnation == 1);

    for (const std::uint32_t incarnation : {2u, 3u}) {
      CAPTURE(incarnation);
      const bool noticed = incarnation == 3;
      const auto mine = cell_on(r, 5);
      call_options o;
      o.deadline = std::chrono::seconds(20);
      auto running = rt->invoke_with(o, &spin, mine, std::uint64_t{50'000'000'000});
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      nodes[r]->kill();
      if (noticed) {
        REQUIRE(wait_for_node(r, [](const node_info& n) { return !n.alive; }));
        CHECK_ERRC(running.try_get(), errc::peer_dead);
        CHECK_ERRC(rt->invoke(&add, mine, 1).try_get(), errc::peer_dead);
      }
      nodes[r] = spawn(r, fmt::format("jit-{}", incarnation));
      REQUIRE(wait_for_node(r, [&](const node_info& n) { return n.alive && n.incarnation == incarnation; }));
      // A call in flight to the old process ends with it, not at its deadline.
      CHECK_ERRC(running.try_get(), errc::peer_dead);
      // Straight from this client: `add` is pushed to the new process.
      CHECK(rt->invoke(&add, cell_on(r, 7), 1).get() == 8);
      // chase from index 1 forwards from shard 0 (node 0) to shard 1 (node
      // r) at once; a forward carries no code, so node r pulls it from node 0.
      const auto t = make_chase_table(*rt, 300, incarnation);
      for (std::uint32_t depth : {1u, 64u})
        CHECK(rt->invoke(&chase, t.shards[0], 1, depth).get() == chase_locally(t.next.data(), 1, depth));
      // Its objects died with it; the directory entries it was home of were
      // registered again by their owners.
      CHECK_ERRC(rt->invoke(&add, before, 1).try_get(), errc::not_found);
      CHECK(rt->invoke(&sum_two, local, homed).get() == 100);
    }
  }

  void kill_node_mid_call() {
    auto c = cell_on(2, 1);
    call_options o;
    o.deadline = std::chrono::seconds(20);
    auto running = rt->invoke_with(o, &spin, c, std::uint64_t{50'000'000'000});
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    const auto t0 = std::chrono::steady_clock::now();
    nodes[2]->kill();
    auto r = running.try_get();
    const auto waited = std::chrono::steady_clock::now() - t0;
    REQUIRE_FALSE(r.ok());
    CHECK(r.code() == errc::peer_dead);
    CHECK(waited < std::chrono::seconds(5));  // heartbeat timeout, well inside the deadline
    // The other nodes keep serving.
    CHECK(rt->invoke(&add, cell_on(0, 7), 1).get() == 8);
  }
};

}  // namespace

TEST_CASE("runtime over UCX shm: invoke, forward, nested, dead node") {
  ucx_cluster cl("shm");
  cl.exercise();
  cl.kill_node_mid_call();
}

TEST_CASE("runtime over UCX tcp (loopback): invoke, forward, nested, dead node") {
  ucx_cluster cl("tcp");
  cl.exercise();
  cl.kill_node_mid_call();
}

TEST_CASE("runtime over UCX shm: a node killed and restarted with the same index serves again, code pulled anew") {
  ucx_cluster cl("shm");
  cl.restart_node();
}

TEST_CASE("runtime over UCX tcp (loopback): a node killed and restarted with the same index serves again, code pulled anew") {
  ucx_cluster cl("tcp");
  cl.restart_node();
}
