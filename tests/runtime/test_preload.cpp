// runtime::preload over real `ferry node` processes (UCX shm): the code is
// shipped, compiled and linked on the node named, nowhere else, and nothing
// runs; the first call there then compiles nothing (the nodes' code_compiles
// counter, `ferry node --stats-file`); preloading again compiles nothing
// either; a node that cannot take the code fails the preload with the call's
// typed error (test_hardening: unsigned code), a node that is not there with
// invalid_argument, and the nodes keep serving.
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>
#include <thread>

#include <ferry/runtime.hpp>

#include "real_cluster.hpp"

using namespace ferry;
using namespace rt_test;

namespace {

/// Counter `name` of node `node` once its stats file says at least
/// `at_least` (the file is rewritten every 50 ms), or its last value after 5 s.
std::uint64_t counter(const node_cluster& cl, std::uint32_t node, const std::string& name, std::uint64_t at_least = 0) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  for (;;) {
    const auto s = cl.stats(node);
    const auto it = s.find(name);
    if (it != s.end() && it->second >= at_least) return it->second;
    if (std::chrono::steady_clock::now() > until) return it == s.end() ? 0 : it->second;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

/// Counter `name` once the stats file has kept it for 200 ms (nothing
/// counted late).
std::uint64_t settled(const node_cluster& cl, std::uint32_t node, const std::string& name) {
  std::uint64_t last = counter(cl, node, name);
  for (int quiet = 0; quiet < 4;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    const std::uint64_t now = counter(cl, node, name);
    quiet = now == last ? quiet + 1 : 0;
    last = now;
  }
  return last;
}

/// Mobile calls node `node` ran, in place or on an executor.
std::uint64_t calls_run(const node_cluster& cl, std::uint32_t node) {
  return settled(cl, node, "calls_inline") + settled(cl, node, "calls_on_executor");
}

}  // namespace

TEST_CASE("preload over real nodes: code made resident ahead on the node named, and its first call there loads nothing") {
  node_cluster cl(std::vector<std::string>{});
  const auto cell = cl.cell_on(1, 41);
  const std::uint64_t loads0 = settled(cl, 0, "code_loads"), loads1 = settled(cl, 1, "code_loads");
  const std::uint64_t ran0 = calls_run(cl, 0), ran1 = calls_run(cl, 1);

  // The preload answers once node 1 holds the code, compiled and linked.
  REQUIRE_OK(cl.rt->preload(&read_cell, on_node{1}).try_get());
  CHECK(counter(cl, 1, "code_loads", loads1 + 1) == loads1 + 1);

  // It ran nothing. (Had node 1 run `read_cell` on the preload's empty
  // argument block, the preload would have failed with invalid_argument.)
  CHECK(calls_run(cl, 1) == ran1);

  // The first call there runs the preloaded code: no load, right answer.
  CHECK(cl.rt->invoke(&read_cell, cell).get() == 41);
  CHECK(settled(cl, 1, "code_loads") == loads1 + 1);
  CHECK(calls_run(cl, 1) == ran1 + 1);

  // Preloading again finds the code resident.
  REQUIRE_OK(cl.rt->preload(&read_cell, on_node{1}).try_get());
  CHECK(settled(cl, 1, "code_loads") == loads1 + 1);

  // Only the node named: node 0 loaded and ran nothing; its own preload loads there.
  CHECK(settled(cl, 0, "code_loads") == loads0);
  CHECK(calls_run(cl, 0) == ran0);
  REQUIRE_OK(cl.rt->preload(&read_cell, on_node{0}).try_get());
  CHECK(counter(cl, 0, "code_loads", loads0 + 1) == loads0 + 1);
  CHECK(calls_run(cl, 0) == ran0);

  // Another function on the same node: its own code is loaded, and still
  // nothing runs (the one call so far is read_cell's).
  REQUIRE_OK(cl.rt->preload(&fill, on_node{1}).try_get());
  CHECK(counter(cl, 1, "code_loads", loads1 + 2) == loads1 + 2);
  CHECK(calls_run(cl, 1) == ran1 + 1);

  // No such node: a typed error at once, nothing sent.
  CHECK_ERRC(cl.rt->preload(&read_cell, on_node{7}).try_get(), errc::invalid_argument);

  // Still serving, both nodes.
  cl.serves(cell, 41);
  CHECK(cl.rt->invoke(&where, cl.cell_on(0, 5)).get() == 0u);
}
