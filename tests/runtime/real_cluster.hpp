// Real `ferry node` processes for the hardening tests, a client runtime
// joined to them, and a raw peer that joins the same cluster the way a
// client does (rendezvous bootstrap, the cluster's transport, a hello) but
// then speaks frames of its own making.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <ferry/code_object.hpp>
#include <ferry/runtime.hpp>

#include "bootstrap/rendezvous.hpp"
#include "mobile.hpp"
#include "test_util.hpp"
#include "transport/transport.hpp"
#include "transport_cases.hpp"
#include "wire/frames.hpp"

namespace rt_test {

/// How to start a node_cluster.
struct cluster_setup {
  std::vector<std::string> node_args;  ///< extra `ferry node` arguments, every node
  std::uint32_t nodes = 2;
  /// Transport of nodes and client (rt_test::ucx_tcp::options(), ofi_tcp...).
  ferry::transport::options transport = ucx_shm::options();
  /// Words put before node i's command line (`env VAR=... ip netns exec NS`);
  /// the process keeps its PID through these execs.
  std::function<std::vector<std::string>(std::uint32_t)> wrap;
  std::string net_devices = "lo";      ///< UCX_NET_DEVICES of this process (the client)
  bool persistent = false;             ///< node i keeps its objects in a store of its own (`--store`)
};

/// `ferry node` processes over UCX shm (or the setup's transport), each keeping
/// its counters in a stats file, and a client runtime.
struct node_cluster {
  std::uint32_t count;
  cluster_setup setup;
  ferry::test::temp_dir dir;
  std::vector<std::unique_ptr<ferry::test::process>> nodes;
  std::unique_ptr<ferry::runtime> rt;

  explicit node_cluster(const std::vector<std::string>& node_args, std::uint32_t nodes_in_cluster = 2)
      : node_cluster(cluster_setup{node_args, nodes_in_cluster, ucx_shm::options(), {}, "lo"}) {}

  explicit node_cluster(const cluster_setup& setup_in) : count(setup_in.nodes), setup(setup_in) {
    ::setenv("UCX_NET_DEVICES", setup.net_devices.c_str(), 1);
    ferry::cluster::rendezvous rv(rendezvous_dir());
    REQUIRE_OK(rv.init(count));
    for (std::uint32_t i = 0; i < count; ++i) nodes.push_back(spawn(i));
    ferry::runtime_options o;
    o.rendezvous = rendezvous_dir();
    select_transport(o, setup.transport);
    rt = std::make_unique<ferry::runtime>(o);
  }
  ~node_cluster() { rt.reset(); }  // the runtime leaves before its nodes stop

  [[nodiscard]] std::filesystem::path rendezvous_dir() const { return dir.path() / "rv"; }
  [[nodiscard]] std::filesystem::path store_of(std::uint32_t node) const {
    return dir.path() / ("store" + std::to_string(node));
  }

  /// Start node i (again: from its store, if persistent).
  std::unique_ptr<ferry::test::process> spawn(std::uint32_t i) {
    std::vector<std::string> argv = setup.wrap ? setup.wrap(i) : std::vector<std::string>{};
    argv.insert(argv.end(), {FERRY_CLI, "node", "--index", std::to_string(i), "--rendezvous",
                             rendezvous_dir().string(), "--jit-cache", (dir.path() / "jit").string(),
                             "--stats-file", stats_file(i).string()});
    for (auto& a : node_transport_args(setup.transport)) argv.push_back(std::move(a));
    if (setup.persistent) argv.insert(argv.end(), {"--store", store_of(i).string()});
    argv.insert(argv.end(), setup.node_args.begin(), setup.node_args.end());
    return std::make_unique<ferry::test::process>(argv);
  }

  /// Start node i again after it died (kill -9): true once this runtime
  /// sees it alive in a new incarnation (at most 15 s: a loaded machine).
  bool restart(std::uint32_t i) {
    const auto before = rt->nodes()[i].incarnation;
    nodes[i]->kill();  // reaps it, if it was killed already
    nodes[i] = spawn(i);
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    for (; std::chrono::steady_clock::now() < until; std::this_thread::sleep_for(std::chrono::milliseconds(2)))
      if (const auto n = rt->nodes()[i]; n.alive && n.incarnation > before) return true;
    MESSAGE("node " << i << " was not seen back within 15 s; the new process: " << nodes[i]->describe()
                    << "\nthis test process:" << ferry::test::stacks_of(::getpid()));
    return false;
  }
  [[nodiscard]] std::filesystem::path stats_file(std::uint32_t node) const {
    return dir.path() / ("node" + std::to_string(node) + ".stats");
  }
  /// Node `node`'s counters as it last wrote them (`ferry node --stats-file`).
  [[nodiscard]] std::map<std::string, std::uint64_t> stats(std::uint32_t node) const {
    std::map<std::string, std::uint64_t> out;
    std::ifstream in(stats_file(node));
    std::string name;
    std::uint64_t value = 0;
    while (in >> name >> value) out[name] = value;
    return out;
  }
  /// Counter `name` of node `node` once its stats file says at least
  /// `at_least` (the file is rewritten every 50 ms), or its last value after 5 s.
  [[nodiscard]] std::uint64_t counter(std::uint32_t node, const std::string& name, std::uint64_t at_least = 0) const {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    for (;;) {
      const auto s = stats(node);
      const auto it = s.find(name);
      if (it != s.end() && it->second >= at_least) return it->second;
      if (std::chrono::steady_clock::now() > until) return it == s.end() ? 0 : it->second;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  /// Counter `name` once the stats file has kept it for 200 ms (nothing
  /// counted late).
  [[nodiscard]] std::uint64_t settled(std::uint32_t node, const std::string& name) const {
    std::uint64_t last = counter(node, name);
    for (int quiet = 0; quiet < 4;) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      const std::uint64_t now = counter(node, name);
      quiet = now == last ? quiet + 1 : 0;
      last = now;
    }
    return last;
  }

  ferry::ref<std::uint64_t> cell_on(std::uint32_t node, std::uint64_t value) {
    return rt_test::cell_on(*rt, node, value);
  }

  // The node still serves: its objects are intact and a correct call works
  // (add returns *cell + x; it writes nothing).
  void serves(ferry::ref<std::uint64_t> cell, std::uint64_t value) {
    CHECK(rt->invoke(&read_cell, cell).get() == value);
    CHECK(rt->invoke(&add, cell, 1).get() == value + 1);
  }
};

/// A peer that speaks frames: joins `cluster` as a client would, connects
/// to every node and says hello, then sends whatever bytes it is given.
struct raw_peer {
  using clock_type = std::chrono::steady_clock;
  std::unique_ptr<ferry::transport::transport> t;
  std::vector<ferry::transport::peer_index> to_node;  ///< transport peer of node i
  ferry::wire::node_index self = 0;
  std::vector<ferry::wire::frame> answers;  ///< frames received (not heartbeats), oldest first
  /// How to answer a node's code_request (nothing: no answer).
  std::function<std::optional<ferry::wire::frame>(const ferry::wire::frame&)> serve_code;
  clock_type::time_point next_beat{};

  explicit raw_peer(const node_cluster& cluster) {
    ferry::cluster::rendezvous rv(cluster.rendezvous_dir());
    self = REQUIRE_OK(rv.claim_member(cluster.count));
    ferry::transport::options o;
    o.kind = "ucx";
    o.tls = "shm";
    t = REQUIRE_OK(ferry::transport::transport::create(o));
    t->on_frame([this](std::span<const std::uint8_t> bytes) {
      auto f = ferry::wire::decode(bytes);
      if (!f || f->type == ferry::wire::frame_type::heartbeat) return;
      answers.push_back(std::move(*f));
    });
    const auto addresses = REQUIRE_OK(rv.node_addresses(cluster.count, std::chrono::seconds(5)));
    for (std::uint32_t i = 0; i < cluster.count; ++i) {
      to_node.push_back(REQUIRE_OK(t->connect(addresses[i])));
      send(i, ferry::wire::encode({ferry::wire::frame_type::hello, self, 0,
                                   ferry::wire::hello_body{self, 0xff, "test", "", t->address()}}));
    }
  }

  void send(std::uint32_t node, std::span<const std::uint8_t> bytes) { REQUIRE_OK(t->send(to_node.at(node), bytes)); }

  /// Drive the transport once; answer the code requests it brought (outside
  /// the transport's handler); send heartbeats every 100 ms, as members do
  /// (a silent member is declared dead, and nothing is sent to it).
  void progress() {
    if (const auto now = clock_type::now(); now >= next_beat) {
      next_beat = now + std::chrono::milliseconds(100);
      for (std::uint32_t i = 0; i < to_node.size(); ++i)
        send(i, ferry::wire::encode({ferry::wire::frame_type::heartbeat, self, 0, ferry::wire::load_body{}}));
    }
    const std::size_t seen = answers.size();
    t->progress();
    for (std::size_t i = seen; i < answers.size(); ++i)
      if (answers[i].type == ferry::wire::frame_type::code_request && serve_code)
        if (auto answer = serve_code(answers[i]); answer && answers[i].source < to_node.size())
          send(answers[i].source, ferry::wire::encode(*answer));
  }

  /// Drive the transport for `how_long`.
  void progress_for(std::chrono::milliseconds how_long) {
    const auto until = clock_type::now() + how_long;
    while (clock_type::now() < until) progress();
  }

  /// The first frame received (now or within `limit`) with call id `call`
  /// (hellos and code requests aside), removed from `answers`.
  std::optional<ferry::wire::frame> await(std::uint64_t call, std::chrono::milliseconds limit) {
    const auto until = clock_type::now() + limit;
    do {
      progress();
      for (auto it = answers.begin(); it != answers.end(); ++it) {
        if (it->call != call || it->type == ferry::wire::frame_type::hello ||
            it->type == ferry::wire::frame_type::code_request)
          continue;
        auto f = std::move(*it);
        answers.erase(it);
        return f;
      }
    } while (clock_type::now() < until);
    return std::nullopt;
  }

  /// An invoke of `code`'s function on `cell` (its argument block is the
  /// cell's ref), code pushed along, answered to this peer under `call`.
  [[nodiscard]] ferry::wire::frame invoke_frame(const ferry::code_object& code, ferry::ref<std::uint64_t> cell,
                                                std::uint64_t call) const {
    ferry::wire::invoke_body b;
    b.code = code.id();
    b.symbol = code.symbol;
    b.signature_hash = code.signature_hash;
    b.origin = self;
    b.origin_call = call;
    b.target = ferry::ref<void>{cell.id, cell.offset};
    b.args.resize(sizeof cell);
    std::memcpy(b.args.data(), &cell, sizeof cell);
    b.code_blob = code.encode();
    return {ferry::wire::frame_type::invoke, self, call, std::move(b)};
  }

  /// What an answer says: its u64 value, or the node's error.
  static ferry::result<std::uint64_t> value_of(const std::optional<ferry::wire::frame>& f) {
    using namespace ferry;
    if (!f) return make_error(errc::timeout, "no answer");
    if (f->type == wire::frame_type::error) {
      const auto& e = std::get<wire::error_body>(f->body);
      return make_error(e.code, e.message);
    }
    if (f->type != wire::frame_type::reply) return make_error(errc::internal, "unexpected frame");
    const auto& r = std::get<wire::reply_body>(f->body).result;
    std::uint64_t v = 0;
    if (r.size() != sizeof v) return make_error(errc::internal, "reply of the wrong size");
    std::memcpy(&v, r.data(), sizeof v);
    return v;
  }

  /// read_cell(cell) with `code` pushed along, to node 1: the value, or the node's error.
  ferry::result<std::uint64_t> read_with(const ferry::code_object& code, ferry::ref<std::uint64_t> cell,
                                         std::uint64_t call) {
    send(1, ferry::wire::encode(invoke_frame(code, cell, call)));
    return value_of(await(call, std::chrono::seconds(20)));
  }
};

}  // namespace rt_test
