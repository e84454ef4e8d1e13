// runtime::preload over real `ferry node` processes (UCX shm): the code is
// shipped, compiled and linked on the node named, nowhere else, and nothing
// runs; the first call there then compiles nothing (the nodes' code_compiles
// counter, `ferry node --stats-file`); preloading again compiles nothing
// either; a node that cannot take the code fails the preload with the call's
// typed error (test_hardening: unsigned code), a node that is not there with
// invalid_argument, and the nodes keep serving. And once the code is
// resident, where its calls run: `ferry node --inline-budget-us` decides
// (the nodes' calls_inline and calls_on_executor counters).
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

/// Mobile calls node `node` ran, in place or on an executor.
std::uint64_t calls_run(const node_cluster& cl, std::uint32_t node) {
  return cl.settled(node, "calls_inline") + cl.settled(node, "calls_on_executor");
}

}  // namespace

TEST_CASE("preload over real nodes: code made resident ahead on the node named, and its first call there loads nothing") {
  node_cluster cl(std::vector<std::string>{});
  const auto cell = cl.cell_on(1, 41);
  const std::uint64_t loads0 = cl.settled(0, "code_loads"), loads1 = cl.settled(1, "code_loads");
  const std::uint64_t ran0 = calls_run(cl, 0), ran1 = calls_run(cl, 1);

  // The preload answers once node 1 holds the code, compiled and linked.
  REQUIRE_OK(cl.rt->preload(&read_cell, on_node{1}).try_get());
  CHECK(cl.counter(1, "code_loads", loads1 + 1) == loads1 + 1);

  // It ran nothing. (Had node 1 run `read_cell` on the preload's empty
  // argument block, the preload would have failed with invalid_argument.)
  CHECK(calls_run(cl, 1) == ran1);

  // The first call there runs the preloaded code: no load, right answer.
  CHECK(cl.rt->invoke(&read_cell, cell).get() == 41);
  CHECK(cl.settled(1, "code_loads") == loads1 + 1);
  CHECK(calls_run(cl, 1) == ran1 + 1);

  // Preloading again finds the code resident.
  REQUIRE_OK(cl.rt->preload(&read_cell, on_node{1}).try_get());
  CHECK(cl.settled(1, "code_loads") == loads1 + 1);

  // Only the node named: node 0 loaded and ran nothing; its own preload loads there.
  CHECK(cl.settled(0, "code_loads") == loads0);
  CHECK(calls_run(cl, 0) == ran0);
  REQUIRE_OK(cl.rt->preload(&read_cell, on_node{0}).try_get());
  CHECK(cl.counter(0, "code_loads", loads0 + 1) == loads0 + 1);
  CHECK(calls_run(cl, 0) == ran0);

  // Another function on the same node: its own code is loaded, and still
  // nothing runs (the one call so far is read_cell's).
  REQUIRE_OK(cl.rt->preload(&fill, on_node{1}).try_get());
  CHECK(cl.counter(1, "code_loads", loads1 + 2) == loads1 + 2);
  CHECK(calls_run(cl, 1) == ran1 + 1);

  // No such node: a typed error at once, nothing sent.
  CHECK_ERRC(cl.rt->preload(&read_cell, on_node{7}).try_get(), errc::invalid_argument);

  // Still serving, both nodes.
  cl.serves(cell, 41);
  CHECK(cl.rt->invoke(&where, cl.cell_on(0, 5)).get() == 0u);
}

TEST_CASE("preload over real nodes: optimized answers once the node runs the code at the optimized tier") {
  node_cluster cl(std::vector<std::string>{});
  const auto cell = cl.cell_on(1, 41);
  const std::uint64_t ups = cl.settled(1, "tier_ups"), loads = cl.settled(1, "code_loads");
  const std::uint64_t ran = calls_run(cl, 1);
  preload_options optimized;
  optimized.optimized = true;
  REQUIRE_OK(cl.rt->preload(&read_cell, on_node{1}, optimized).try_get());
  // Loaded and recompiled before the answer (the stats file lags a little),
  // and only once: the node ran nothing.
  CHECK(cl.counter(1, "tier_ups", ups + 1) == ups + 1);
  CHECK(cl.settled(1, "tier_ups") == ups + 1);
  CHECK(cl.settled(1, "code_loads") == loads + 1);
  CHECK(calls_run(cl, 1) == ran);
  // Asked again: it runs optimized already, nothing is compiled.
  REQUIRE_OK(cl.rt->preload(&read_cell, on_node{1}, optimized).try_get());
  CHECK(cl.settled(1, "tier_ups") == ups + 1);
  CHECK(cl.settled(1, "code_loads") == loads + 1);
  // The call runs the optimized code, and a plain preload after it changes nothing.
  CHECK(cl.rt->invoke(&read_cell, cell).get() == 41);
  REQUIRE_OK(cl.rt->preload(&read_cell, on_node{1}).try_get());
  CHECK(cl.settled(1, "tier_ups") == ups + 1);
  // A plain preload leaves code at the fast tier (what a first call gets).
  const std::uint64_t ups0 = cl.settled(0, "tier_ups");
  REQUIRE_OK(cl.rt->preload(&read_cell, on_node{0}).try_get());
  CHECK(cl.settled(0, "tier_ups") == ups0);
  cl.serves(cell, 41);
}

TEST_CASE("in-place budget over real nodes: ferry node --inline-budget-us decides where warm calls run") {
  constexpr std::uint64_t kCalls = 20;
  for (const std::string budget : {"0", "1000000"}) {
    CAPTURE(budget);
    node_cluster cl(std::vector<std::string>{"--inline-budget-us", budget});
    const auto cell = cl.cell_on(1, 7);
    const std::uint64_t in_place0 = cl.settled(1, "calls_inline"), executor0 = cl.settled(1, "calls_on_executor");
    for (std::uint64_t i = 0; i < kCalls; ++i) REQUIRE(cl.rt->invoke(&read_cell, cell).get() == 7);
    const std::uint64_t in_place = cl.settled(1, "calls_inline") - in_place0;
    const std::uint64_t on_executor = cl.settled(1, "calls_on_executor") - executor0;
    CHECK(in_place + on_executor == kCalls);
    if (budget == "0") {
      CHECK(on_executor == kCalls);  // every call on an executor
    } else {
      // A code object's first run goes to an executor (its run time is not
      // known yet); every later one took far less than a second: in place.
      CHECK(on_executor == 1);
    }
  }
}
