// Faults under load, over real `ferry node` processes (docs/security.md,
// "Faults"): multi-hop pointer chases (samples/pointer_chase) are in flight
// over three nodes when one node is killed with SIGKILL, or when the link to
// it is cut (`ip link set down` on a veth pair between two network
// namespaces this test creates; UCX tcp and libfabric tcp;ofi_rxm). Every
// caller gets its answer or an error — never a wrong answer, never its
// deadline — and the surviving nodes keep serving.
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "chase.hpp"
#include "directory/router.hpp"
#include "real_cluster.hpp"

using namespace ferry;
using rt_test::cluster_setup;
using rt_test::node_cluster;
using clock_type = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

constexpr std::uint32_t kDepth = 4096;    // about 2700 crossings between nodes (shm)
constexpr std::uint32_t kTcpDepth = 256;  // about 170 (tcp: about 1 ms each here)
constexpr auto kDeadline = std::chrono::seconds(8);

double ms_since(clock_type::time_point t) {
  return std::chrono::duration<double, std::milli>(clock_type::now() - t).count();
}

// What happened to the chases of one run.
struct chase_tally {
  int right = 0, wrong = 0;
  std::map<errc, int> errors;
  std::map<errc, int> errors_of_pending;  // of the calls in flight when the fault struck
  int pending_at_fault = 0;          // calls in flight when the fault struck
  double slowest_error_ms = 0;       // longest from the fault (or a later start) to an error
  double slowest_call_ms = 0;        // longest call, start to end
};

// What each node was doing when no chase came back for a while.
void describe_stall(const node_cluster& cl, std::size_t in_flight) {
  std::string nodes;
  for (std::uint32_t i = 0; i < cl.count; ++i) {
    nodes += "\nnode " + std::to_string(i) + ":";
    for (const auto& [name, value] : cl.stats(i)) nodes += " " + name + "=" + std::to_string(value);
    nodes += "\n" + cl.nodes[i]->describe();
  }
  MESSAGE("no chase came back before the fault (" << in_flight << " in flight)" << nodes
                                                   << "\nthis test process:" << ferry::test::stacks_of(::getpid()));
}

// Keep `in_flight` chases of kDepth steps going over the shards of `h` for
// `before` and until one has come back (all must be right), strike
// `fault`, and keep issuing for `after`; then wait for every call still
// out. On a loaded machine six chases of 4096 steps take longer than 1.5 s
// (about 0.1 ms a crossing with two busy loops beside them), so the fault
// waits for the first answer, up to the calls' deadline; none by then is a
// stall, and `cl`'s nodes are described first (their counters and
// threads' stacks, and this process's).
chase_tally chase_through(node_cluster& cl, const chase_shard& h, const std::vector<std::uint64_t>& table,
                          std::uint32_t depth, const std::function<void()>& fault, milliseconds before,
                          milliseconds after) {
  runtime& rt = *cl.rt;
  struct call {
    future<std::uint64_t> f;
    clock_type::time_point started;
    std::uint64_t expect;
  };
  call_options o;
  o.deadline = kDeadline;
  constexpr std::size_t kInFlight = 6;
  std::vector<call> out;
  chase_tally t;
  std::uint64_t next_start = 1;
  std::optional<clock_type::time_point> struck;
  auto settle = [&](call& c) {
    auto r = c.f.try_get();
    t.slowest_call_ms = std::max(t.slowest_call_ms, ms_since(c.started));
    if (r) {
      (*r == c.expect ? t.right : t.wrong) += 1;
      return;
    }
    ++t.errors[r.code()];
    if (struck && c.started < *struck) ++t.errors_of_pending[r.code()];
    if (struck) t.slowest_error_ms = std::max(t.slowest_error_ms, ms_since(std::max(*struck, c.started)));
  };
  const auto t0 = clock_type::now();
  while (!struck || clock_type::now() - *struck < after) {
    if (const auto waited = clock_type::now() - t0;
        !struck && waited >= before && (t.right > 0 || waited >= kDeadline)) {
      REQUIRE(t.wrong == 0);
      CHECK(t.errors.empty());  // nothing fails before the fault
      if (t.right == 0) describe_stall(cl, out.size());
      t.pending_at_fault = static_cast<int>(out.size());
      fault();
      struck = clock_type::now();
    }
    for (auto it = out.begin(); it != out.end();) {
      if (!it->f.ready()) {
        ++it;
        continue;
      }
      settle(*it);
      it = out.erase(it);
    }
    while (out.size() < kInFlight) {
      const std::uint64_t start = (next_start++ * 7919) % table.size();
      out.push_back({rt.invoke_with(o, &::chase, h.all[start % h.shards], start, depth), clock_type::now(),
                     ::chase_table::follow(table, start, depth)});
    }
    std::this_thread::sleep_for(milliseconds(1));
  }
  for (auto& c : out) settle(c);
  return t;
}

void report(const chase_tally& t, const std::string& what) {
  std::string errors, pending;
  for (auto& [e, n] : t.errors) errors += std::string(to_string(e)) + " " + std::to_string(n) + " ";
  for (auto& [e, n] : t.errors_of_pending) pending += std::string(to_string(e)) + " " + std::to_string(n) + " ";
  MESSAGE(what << ": " << t.right << " chases right, " << t.wrong << " wrong, errors: " << errors
               << "(of the calls in flight at the fault: " << pending << ") ("
               << t.pending_at_fault << " in flight at the fault; slowest error " << t.slowest_error_ms
               << " ms after it; slowest call " << t.slowest_call_ms << " ms)");
}

// The guarantees after a fault that took node 2 away.
void check_guarantees(node_cluster& cl, const chase_tally& t, const std::vector<std::uint64_t>& table,
                      std::uint32_t depth) {
  CHECK(t.wrong == 0);
  CHECK(t.right > 0);
  CHECK(t.pending_at_fault > 0);
  // Every failure is the node's death, reported before the call's deadline.
  for (auto& [e, n] : t.errors) CHECK_MESSAGE(e == errc::peer_dead, to_string(e) << " x" << n);
  CHECK(t.errors.count(errc::peer_dead) == 1);
  CHECK(t.slowest_call_ms < std::chrono::duration<double, std::milli>(kDeadline).count());
  // The survivors serve: their objects, and a chase over them alone.
  const auto c0 = cl.cell_on(0, 10), c1 = cl.cell_on(1, 11);
  cl.serves(c0, 10);
  cl.serves(c1, 11);
  // (Under the home directory scheme an object whose home was node 2 cannot
  // be found by a node that has not cached its owner: shards homed on
  // survivors. docs/security.md, "Faults".)
  chase_shard two{};
  for (int tries = 0; tries < 30; ++tries) {
    two = place_shards(*cl.rt, table, {0, 1});
    if (directory::home_of(two.all[0].id, cl.count) != 2 && directory::home_of(two.all[1].id, cl.count) != 2) break;
  }
  for (std::uint64_t start : {3u, 1000u, 30000u})
    CHECK(cl.rt->invoke(&::chase, two.all[start % 2], start, depth).get() == ::chase_table::follow(table, start, depth));
}

}  // namespace

TEST_CASE("faults: kill -9 of a node during multi-hop chases") {
  node_cluster cl({}, 3);
  const auto table = ::chase_table::make(15, 2026);
  const chase_shard h = place_shards(*cl.rt, table, {0, 1, 2});
  CHECK(cl.rt->invoke(&::chase, h.all[7 % 3], std::uint64_t{7}, kDepth).get() == ::chase_table::follow(table, 7, kDepth));
  const auto t =
      chase_through(cl, h, table, kDepth, [&] { cl.nodes[2]->kill(); }, milliseconds(1500), milliseconds(3000));
  report(t, "kill -9 of node 2");
  check_guarantees(cl, t, table, kDepth);
  for (std::uint32_t i : {0u, 1u}) CHECK(::waitpid(cl.nodes[i]->pid(), nullptr, WNOHANG) == 0);
}

namespace {

// A network namespace joined to this one by a veth pair, named after this
// process (other tests may run at the same time), with a subnet of its own;
// removed on scope exit (its end of the pair goes with it, and so the pair).
struct veth_namespace {
  std::string ns, here_dev, there_dev, here_ip, there_ip;
  std::string ip;
  bool ok = false;

  veth_namespace() {
    const auto pid = ::getpid();
    ns = "ferry-faults-" + std::to_string(pid);
    here_dev = "ffa" + std::to_string(pid);
    there_dev = "ffb" + std::to_string(pid);
    const std::string net = "10." + std::to_string(100 + (pid / 250) % 100) + "." + std::to_string(pid % 250) + ".";
    here_ip = net + "1";
    there_ip = net + "2";
    for (const char* p : {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"})
      if (ip.empty() && ::access(p, X_OK) == 0) ip = p;
    if (ip.empty() || ::geteuid() != 0) return;
    ok = sh("netns add " + ns) && sh("link add " + here_dev + " type veth peer name " + there_dev + " netns " + ns) &&
         sh("addr add " + here_ip + "/24 dev " + here_dev) &&
         sh("-n " + ns + " addr add " + there_ip + "/24 dev " + there_dev) && sh("-n " + ns + " link set lo up") &&
         sh("link set " + here_dev + " up") && sh("-n " + ns + " link set " + there_dev + " up");
  }
  ~veth_namespace() {
    if (ip.empty()) return;
    (void)sh("netns del " + ns + " 2>/dev/null");
    (void)sh("link del " + here_dev + " 2>/dev/null");  // if the namespace never got its end
  }
  bool sh(const std::string& args) const { return std::system((ip + " " + args).c_str()) == 0; }
};

// The link to node 2 cut during chases over `transport` (tcp): nodes 0 and
// 1 and this client here, node 2 in the namespace, each told by
// `device_var` (UCX_NET_DEVICES, FI_TCP_IFACE) to use its end of the veth
// pair (0 and 1 reach each other at the address of this end).
void cut_link_during_chases(const ferry::transport::options& transport, const std::string& device_var) {
  veth_namespace net;
  if (!net.ok) {
    MESSAGE("skipped: needs root and iproute2 to create a network namespace");
    return;
  }
  ::setenv(device_var.c_str(), net.here_dev.c_str(), 1);  // this client
  cluster_setup setup;
  setup.nodes = 3;
  setup.transport = transport;
  setup.net_devices = net.here_dev;
  setup.wrap = [&](std::uint32_t i) {
    if (i != 2) return std::vector<std::string>{"/usr/bin/env", device_var + "=" + net.here_dev};
    return std::vector<std::string>{"/usr/bin/env", device_var + "=" + net.there_dev, net.ip, "netns", "exec", net.ns};
  };
  node_cluster cl(setup);
  const auto table = ::chase_table::make(15, 2026);
  const chase_shard h = place_shards(*cl.rt, table, {0, 1, 2});
  CHECK(cl.rt->invoke(&::chase, h.all[7 % 3], std::uint64_t{7}, kTcpDepth).get() ==
        ::chase_table::follow(table, 7, kTcpDepth));
  const auto t = chase_through(
      cl, h, table, kTcpDepth, [&] { REQUIRE(net.sh("-n " + net.ns + " link set " + net.there_dev + " down")); },
      milliseconds(1500), milliseconds(3000));
  report(t, "link to node 2 cut (" + rt_test::transport_name(transport) + ")");
  check_guarantees(cl, t, table, kTcpDepth);
  CHECK(::waitpid(cl.nodes[2]->pid(), nullptr, WNOHANG) == 0);  // node 2 itself lives on, cut off
  ::unsetenv(device_var.c_str());
}

}  // namespace

TEST_CASE("faults: a cut link (veth down, UCX tcp) during multi-hop chases") {
  cut_link_during_chases(rt_test::ucx_tcp::options(), "UCX_NET_DEVICES");
}

// Over tcp;ofi_rxm nodes 0 and 1 answer every call they forwarded to node 2
// (thousands) when they declare it dead, in one burst to this client
// (runtime/transport/ofi.cpp, kMaxBacklogBytes).
TEST_CASE("faults: a cut link (veth down, libfabric tcp, ofi_rxm) during multi-hop chases") {
  cut_link_during_chases(rt_test::ofi_tcp::options(), "FI_TCP_IFACE");
}

// A node's UCX shm receive queue left half-written by a sender killed in the
// middle of a send: the node hears no one again, while its heartbeats still
// reach its peers, so calls to it used to wait for their deadline
// (docs/transports.md, "A peer that dies"). It notices now within seconds
// (its transport probes its own queue), says why and aborts, so that it can
// be restarted; its peers then declare it dead, calls to it fail with
// peer_dead, and the other node serves on. Senders of 6000-byte frames
// (ferry-test-frame-blaster) are killed four at a time at random moments
// until node 0 stops answering.
TEST_CASE("faults: a node deafened by a sender killed in the middle of a send aborts with the reason") {
  ferry::test::temp_dir logs;
  const auto err = logs.path() / "node0.err";
  cluster_setup setup;
  setup.nodes = 2;
  setup.wrap = [&](std::uint32_t i) -> std::vector<std::string> {
    if (i != 0) return {};
    return {"/bin/sh", "-c", "exec \"$0\" \"$@\" 2>>" + err.string()};
  };
  node_cluster cl(setup);
  const auto on0 = cl.cell_on(0, 5), on1 = cl.cell_on(1, 6);
  REQUIRE(cl.rt->invoke(&rt_test::add, on0, 1).get() == 6);
  ferry::cluster::rendezvous rv(cl.rendezvous_dir());
  const auto addresses = REQUIRE_OK(rv.node_addresses(cl.count, std::chrono::seconds(5)));
  std::string hex;
  for (const std::uint8_t b : addresses[0]) hex += fmt::format("{:02x}", b);
  call_options quick;
  quick.deadline = std::chrono::milliseconds(500);
  int kills = 0, signal = 0;
  bool ended = false;
  std::mt19937 random(2026);
  while (!ended && kills < 240) {
    std::vector<std::unique_ptr<ferry::test::process>> senders;
    for (int k = 0; k < 4; ++k)
      senders.push_back(std::make_unique<ferry::test::process>(std::vector<std::string>{FERRY_FRAME_BLASTER, hex}));
    std::this_thread::sleep_for(milliseconds(250));  // started (UCX's set-up: about 0.15 s), connected, sending
    for (auto& s : senders) {
      std::this_thread::sleep_for(std::chrono::microseconds(random() % 1000));
      s->kill();
      ++kills;
    }
    if (cl.rt->invoke_with(quick, &rt_test::add, on0, std::uint64_t{0}).try_get().ok()) continue;
    // No answer: deaf (it aborts within seconds), or only slow.
    for (auto until = clock_type::now() + std::chrono::seconds(8); !ended && clock_type::now() < until;
         std::this_thread::sleep_for(milliseconds(20)))
      ended = cl.nodes[0]->ended(&signal);
  }
  MESSAGE("node 0 ended after " << kills << " kill(s) of a sender");
  REQUIRE(ended);
  CHECK(signal == SIGABRT);
  std::ifstream in(err);
  const std::string said((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK_MESSAGE(said.find("receive queue is stuck") != std::string::npos, said);
  CHECK(said.find("Aborting, so that it can be restarted") != std::string::npos);
  // Its peers see it gone: calls to it fail with peer_dead, not at their deadline.
  const auto t0 = clock_type::now();
  while (cl.rt->nodes()[0].alive && clock_type::now() - t0 < std::chrono::seconds(5))
    std::this_thread::sleep_for(milliseconds(20));
  CHECK_FALSE(cl.rt->nodes()[0].alive);
  call_options patient;
  patient.deadline = std::chrono::seconds(20);
  const auto asked = clock_type::now();
  CHECK_ERRC(cl.rt->invoke_with(patient, &rt_test::add, on0, std::uint64_t{1}).try_get(), errc::peer_dead);
  CHECK(clock_type::now() - asked < std::chrono::seconds(5));
  CHECK(cl.rt->invoke(&rt_test::add, on1, 1).get() == 7);  // the other node serves on
}
