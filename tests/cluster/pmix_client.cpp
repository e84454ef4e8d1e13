// The client of the mpirun job in test_pmix.sh: joins through PMIx (no
// FERRY_RENDEZVOUS, PMIX_RANK set), checks what the launcher told it, runs
// mobile code on every node and a nested call across nodes, and prints one
// "ok:" line. Exit status 0 only if every check held.
#include <cstdio>
#include <cstdlib>
#include <string>

#include <ferry/runtime.hpp>

#include "runtime/mobile.hpp"

namespace {

int failures = 0;

void expect(bool ok, const std::string& what) {
  if (!ok) {
    std::fprintf(stderr, "pmix_client: FAILED: %s\n", what.c_str());
    ++failures;
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: pmix_client NODES\n");
    return 2;
  }
  const auto nodes = static_cast<std::uint32_t>(std::strtoul(argv[1], nullptr, 10));
  try {
    ferry::runtime rt(argc, argv);
    const char* rank = std::getenv("PMIX_RANK");
    expect(rank != nullptr && rt.member_index() == std::strtoul(rank, nullptr, 10), "member index is the PMIx rank");
    expect(rt.member_index() >= nodes, "a client's index follows the nodes'");
    expect(rt.nodes().size() == nodes, "the job's first app are the data nodes");
    for (std::uint32_t n = 0; n < nodes; ++n) {
      const auto cell = rt_test::cell_on(rt, n, 1000 * n + rt.member_index());
      expect(rt.invoke(&rt_test::add, cell, 1).get() == 1000 * n + rt.member_index() + 1, "add on node " + std::to_string(n));
      expect(rt.invoke(&rt_test::where, cell).get() == n, "where on node " + std::to_string(n));
    }
    const auto a = rt_test::cell_on(rt, 0, 40), b = rt_test::cell_on(rt, nodes - 1, 2);
    expect(rt.invoke(&rt_test::sum_two, a, b).get() == 42, "nested call from node 0 to the last node");
    if (failures == 0) std::printf("ok: client %u of %u nodes\n", rt.member_index(), nodes);
  } catch (const ferry::error& e) {
    std::fprintf(stderr, "pmix_client: %s\n", e.what());
    return 1;
  }
  return failures == 0 ? 0 : 1;
}
