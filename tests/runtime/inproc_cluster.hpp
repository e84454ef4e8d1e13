// Three nodes (threads) and a client in one process over the in-process
// transport, for the suites that test the runtime's logic end to end.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include <ferry/runtime.hpp>

#include "bootstrap/bootstrap.hpp"
#include "bootstrap/rendezvous.hpp"
#include "mobile.hpp"
#include "node/node.hpp"
#include "test_util.hpp"

namespace rt_test {

using namespace ferry;

/// Transport and JIT settings of a cluster_fixture.
struct cluster_settings {
  std::string transport = "inproc";
  std::string tls;
  /// jit_config::hot_call_threshold (0: no tier-up compiles in the background).
  std::uint64_t hot_call_threshold = 1000;
  /// node_config::inline_budget.
  std::chrono::microseconds inline_budget{50};
  /// Nodes keep their objects in persistent stores (one directory each).
  bool persistent = false;
  /// This node is of kind storage (node_config::kind: its gets read at rest).
  std::optional<std::uint32_t> storage_node{};
};

struct cluster_fixture {
  static constexpr std::uint32_t kNodes = 3;
  test::temp_dir dir;
  std::vector<std::unique_ptr<cluster::bootstrap>> boots;
  std::vector<std::unique_ptr<node::node>> nodes;
  std::unique_ptr<runtime> rt;

  explicit cluster_fixture(const cluster_settings& with = {}) {
    if (with.transport != "inproc") ferry::test::loopback_only();
    cluster::rendezvous rv(dir.path() / "rv");
    REQUIRE_OK(rv.init(kNodes));
    for (std::uint32_t i = 0; i < kNodes; ++i) {
      node::node_config cfg;
      cfg.index = i;
      cfg.nodes = kNodes;
      cfg.member.transport = {.kind = with.transport, .tls = with.tls, .provider = {}, .link = {}};
      cfg.jit.cache_dir = dir.path() / "jit";
      cfg.jit.hot_call_threshold = with.hot_call_threshold;
      cfg.inline_budget = with.inline_budget;
      if (with.persistent) cfg.store_dir = dir.path() / "store" / std::to_string(i);
      if (with.storage_node == i) cfg.kind = FERRY_NODE_STORAGE;
      nodes.push_back(REQUIRE_OK(node::node::create(cfg)));
    }
    std::vector<std::thread> joins;
    std::vector<status> joined(kNodes);
    for (std::uint32_t i = 0; i < kNodes; ++i) {
      cluster::bootstrap_options bo;
      bo.rendezvous = dir.path() / "rv";
      bo.index = i;
      boots.push_back(REQUIRE_OK(cluster::open_bootstrap(cluster::bootstrap_role::node, bo)));
    }
    for (std::uint32_t i = 0; i < kNodes; ++i)
      joins.emplace_back([&, i] { joined[i] = nodes[i]->join(*boots[i], std::chrono::seconds(10)).error(); });
    for (auto& t : joins) t.join();
    for (const auto& s : joined) REQUIRE_MESSAGE(s.ok(), s.describe());
    runtime_options o;
    o.rendezvous = dir.path() / "rv";
    o.transport = with.transport;
    o.tls = with.tls;
    rt = std::make_unique<runtime>(o);
  }
  ~cluster_fixture() {
    rt.reset();
    nodes.clear();
  }

  ref<std::uint64_t> cell_on(std::uint32_t node, std::uint64_t value) { return rt_test::cell_on(*rt, node, value); }
};

template <class R>
errc error_of(future<R> f) {
  auto r = f.try_get();
  return r ? errc::ok : r.code();
}


}  // namespace rt_test
