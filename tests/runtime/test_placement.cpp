// Automatic placement over real node processes (UCX shm): the seed's case.
// Bob (node 0) holds a model partition and is saturated by another client's
// stream of long calls, which Alice's inference waits behind (Bob runs every
// call on his executors: --inline-budget-us 0); Carol (node 1) is idle.
// Alice, a client that does not run mobile code, asks for inference with
// placement::automatic: it runs on Carol, which pulls the model, and gives
// the same answer; once Carol is measured and Bob is not, one call goes to
// Bob to measure him, and the next goes to Carol again. Dave, a client that
// runs mobile code fast, runs it himself on a pulled copy. A call with the
// default placement still runs on Bob. Every check reads the per-call
// placement_info and where the function itself says it ran, never a time.
// (The cost model's own decisions, with measured and modelled places:
// test_cost_model.cpp.)
#include <chrono>
#include <memory>
#include <thread>

#include <ferry/runtime.hpp>

#include <fmt/format.h>

#include "bootstrap/rendezvous.hpp"
#include "mobile.hpp"
#include "rendezvous/inference.hpp"
#include "test_util.hpp"

using namespace ferry;
using namespace rt_test;
using namespace rendezvous_case;  // the case's code: samples/rendezvous/inference.hpp

namespace {

constexpr std::uint32_t kBob = 0, kCarol = 1;

struct placement_cluster {
  test::temp_dir dir;
  std::vector<std::unique_ptr<test::process>> nodes;  // stopped after the runtimes go

  /// `bob_args`: more options for Bob's `ferry node`.
  explicit placement_cluster(std::vector<std::string> bob_args = {}) {
    ferry::test::loopback_only();
    cluster::rendezvous rv(dir.path() / "rv");
    REQUIRE_OK(rv.init(2));
    for (std::uint32_t i = 0; i < 2; ++i) {
      std::vector<std::string> argv{FERRY_CLI, "node",        "--index", std::to_string(i), "--rendezvous",
                                    (dir.path() / "rv").string(), "--transport", "ucx", "--tls", "shm",
                                    "--jit-cache", (dir.path() / "jit").string()};
      if (i == kBob) argv.insert(argv.end(), bob_args.begin(), bob_args.end());
      nodes.push_back(std::make_unique<test::process>(std::move(argv)));
    }
  }

  std::unique_ptr<runtime> client(double caller_speed = 0) {
    runtime_options o;
    o.rendezvous = dir.path() / "rv";
    o.transport = "ucx";
    o.tls = "shm";
    o.caller_speed = caller_speed;
    return std::make_unique<runtime>(o);
  }
};

}  // namespace

TEST_CASE("placement over UCX shm: Bob saturated and Carol idle, automatic placement runs Alice's calls on Carol "
          "and measures Bob once, Dave runs his locally, fixed placement stays on Bob") {
  placement_cluster c(node_options(kBob, /*pin=*/false, /*bob_queued=*/true));  // every call on Bob's executors
  auto alice = c.client();
  auto eve = c.client();         // the load on Bob
  auto dave = c.client(4.0);     // runs mobile code, 4x a node's speed
  auto [model, words] = make_model(*alice, 128 * 1024, kBob);  // 1 MiB
  auto [small, small_words] = make_model(*dave, 512, kBob);  // 4 KiB: Dave's
  auto cell = eve->objects().create<std::uint64_t>(1, on_node(kBob));
  const std::uint64_t input = 42;
  const std::uint64_t expected = infer_expected(words.data(), words.size(), input);
  const std::uint64_t expected_small = infer_expected(small_words.data(), small_words.size(), input);

  // Idle cluster: automatic placement leaves the call with its data.
  {
    auto f = alice->invoke_with(call_options{.placement = placement::automatic}, &infer, model, words.size(), input);
    const auto r = f.get();
    const auto why = f.where();
    INFO(why.reason);
    CHECK(why.automatic);
    CHECK(why.choice == placement_info::how::owner);
    CHECK(why.node == kBob);
    CHECK(r.node == kBob);
    CHECK(r.value == expected);
  }

  // Each call long enough (≥ ms even on a quiet machine) that Bob's queue outweighs
  // shipping and compiling the code on Carol.
  saturate load(*eve, cell, 10'000'000, 12);
  REQUIRE(wait_for_queue(*alice, kBob, 4, std::chrono::seconds(20)));
  REQUIRE(wait_for_queue(*dave, kBob, 4, std::chrono::seconds(20)));
  CHECK(alice->nodes()[kCarol].load.queued == 0);
  // Alice's measure of Bob (the idle call) goes stale: the model decides again.
  std::this_thread::sleep_for(std::chrono::milliseconds(kObservedForMs + 100));

  // Alice: not Bob (its queue), not herself (she runs no mobile code): Carol,
  // pulling the model. The first call there carries the code (not measured:
  // its time includes the compile), the second measures Carol; so the third
  // measures Bob (nobody else measures him while Carol is measured), whose
  // queue sends the next one to Carol.
  const placement_info::how expect[] = {placement_info::how::pulled, placement_info::how::pulled,
                                        placement_info::how::owner, placement_info::how::pulled};
  for (int i = 0; i < 4; ++i) {
    auto f = alice->invoke_with(call_options{.placement = placement::automatic}, &infer, model, words.size(), input + i);
    const auto r = f.get();
    const auto why = f.where();
    INFO("call ", i, ": ", why.reason);
    CHECK(why.automatic);
    CHECK(why.choice == expect[i]);
    CHECK(why.node == (expect[i] == placement_info::how::owner ? kBob : kCarol));
    CHECK(r.node == why.node);
    CHECK(r.value == infer_expected(words.data(), words.size(), input + i));
    if (i < 2) CHECK(why.estimate_us < why.owner_estimate_us);  // the model: Bob's queue
    if (i == 2) CHECK(why.reason.find("this call measures it") != std::string::npos);
    if (i == 3) CHECK(why.reason.find("measured") != std::string::npos);  // both places measured now
  }
  CHECK(alice->stats().placed_pulled == 3);

  // Dave: a small model, and he runs mobile code: he runs it himself on a pulled copy.
  {
    auto f = dave->invoke_with(call_options{.placement = placement::automatic}, &infer, small, small_words.size(), input);
    const auto r = f.get();
    const auto why = f.where();
    INFO(why.reason);
    CHECK(why.choice == placement_info::how::caller);
    CHECK(why.node == kCaller);
    CHECK(r.node == dave->member_index());
    CHECK(r.value == expected_small);
    CHECK(dave->stats().placed_caller == 1);
  }

  // Fixed placement (the default) still runs on Bob, behind the queue, with the same answer.
  {
    auto f = alice->invoke(&infer, model, words.size(), input);
    const auto r = f.get();
    const auto why = f.where();
    CHECK_FALSE(why.automatic);
    CHECK(why.choice == placement_info::how::owner);
    CHECK(why.node == kBob);
    CHECK(r.node == kBob);
    CHECK(r.value == expected);
  }
  load.stop();
  CHECK(load.failed() == 0);
  CHECK(load.done() > 0);

  // Carol's heartbeats report the calls she ran on pulled data, and what they pulled.
  bool reported = false;
  for (int i = 0; i < 100 && !reported; ++i) {
    const auto l = alice->nodes()[kCarol].load;
    reported = l.pulled_calls >= 3 && l.pulled_bytes >= 3 * words.size() * sizeof(std::uint64_t);
    if (!reported) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  CHECK(reported);
}

TEST_CASE("placement over UCX shm: a policy that names no candidate sends the call to the owner, and a custom policy is "
          "obeyed") {
  placement_cluster c;
  auto alice = c.client();
  auto [model, words] = make_model(*alice, 256, kBob);
  const std::uint64_t expected = infer_expected(words.data(), words.size(), 1);

  struct always : placement_policy {
    std::uint32_t node;
    explicit always(std::uint32_t n) : node(n) {}
    placement_decision choose(const placement_input& in) override {
      CHECK(in.object_bytes == words_bytes);
      CHECK(in.owner == kBob);
      CHECK(in.candidates.size() == 2);  // the two nodes; Alice does not run mobile code
      CHECK(in.code_bytes > 0);
      return {node, fmt::format("always {}", node), 1, 2};
    }
    std::uint64_t words_bytes = 256 * sizeof(std::uint64_t);
  };
  alice->set_placement_policy(std::make_shared<always>(kCarol));
  auto f = alice->invoke_with(call_options{.placement = placement::automatic}, &infer, model, words.size(), 1);
  CHECK(f.get().node == kCarol);
  CHECK(f.get().value == expected);
  CHECK(f.where().reason == "always 1");

  alice->set_placement_policy(std::make_shared<always>(7));  // no such node
  auto g = alice->invoke_with(call_options{.placement = placement::automatic}, &infer, model, words.size(), 1);
  CHECK(g.get().node == kBob);
  CHECK(g.where().choice == placement_info::how::owner);
  CHECK(g.get().value == expected);
}

TEST_CASE("placement over UCX shm: the policy is told the bandwidth the client's bulk transfers measured to each node") {
  placement_cluster c({"--link-bandwidth", "40MB"});  // Bob's link: ferry's delay line, 40 MiB/s each way
  auto alice = c.client();
  auto [model, words] = make_model(*alice, 256, kBob);  // 2 KiB: too small to say anything of a link

  struct recording : placement_policy {
    std::vector<placement_candidate> seen;
    placement_decision choose(const placement_input& in) override {
      seen.assign(in.candidates.begin(), in.candidates.end());
      return {in.owner, "recorded", 1, 1};
    }
  };
  auto policy = std::make_shared<recording>();
  alice->set_placement_policy(policy);
  auto links = [&] {
    policy->seen.clear();
    CHECK(alice->invoke_with(call_options{.placement = placement::automatic}, &infer, model, words.size(), 1)
              .get()
              .node == kBob);
    REQUIRE(policy->seen.size() == 2);
    return std::pair{policy->seen[kBob].link, policy->seen[kCarol].link};
  };

  // No bulk transfer yet: both links have the figure assumed for UCX shm.
  const auto [bob_assumed, carol_assumed] = links();
  CHECK(bob_assumed.bytes_per_us == carol_assumed.bytes_per_us);
  CHECK(bob_assumed.bytes_per_us >= 1000);

  // 2 MiB put to each node and read back, three times: Bob's link is
  // measured at its 40 MiB/s (about 42 bytes a µs), Carol's at shared
  // memory's speed (its first transfers, into memory written for the
  // first time on both sides, are the slowest: the mean rises after them).
  const std::vector<std::uint64_t> data(std::size_t{1} << 18, 7);
  std::vector<std::uint64_t> back(data.size());
  for (const std::uint32_t node : {kBob, kCarol}) {
    const ferry::ref<std::uint64_t> at{alice->objects().create_bytes(data.size() * sizeof data[0], node), 0};
    for (int round = 0; round < 3; ++round) {
      alice->objects().put(at, std::span<const std::uint64_t>(data));
      alice->objects().get(at, std::span<std::uint64_t>(back));
      CHECK(back == data);
    }
  }
  const auto [bob, carol] = links();
  MESSAGE("measured: Bob " << bob.bytes_per_us << " bytes/us, Carol " << carol.bytes_per_us << " bytes/us");
  CHECK(bob.bytes_per_us > 10);
  CHECK(bob.bytes_per_us < 60);
  CHECK(carol.bytes_per_us > 2 * bob.bytes_per_us);
  CHECK(bob.latency_us == bob_assumed.latency_us);  // latencies stay assumed
}
