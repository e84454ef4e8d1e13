// Sample: rendezvous of data and compute, placement decided by ferry. The
// case of the seed ("Don't Let RPCs Constrain Your API", section 2 and its
// Figure 1): Bob (node 0) holds a partition of a model; Alice asks for an
// inference over it. Bob is saturated by another client (Eve); Carol
// (node 1) is idle. Alice names only the function and the data
// (placement::automatic); ferry's cost model (docs/mobility.md) decides:
//   idle cluster       the call runs where the data is (Bob)
//   Bob saturated      Alice's calls run on Carol, which pulls the model;
//                      once Carol is measured and Bob is not, one call goes
//                      to Bob to measure him, and his queue sends the next
//                      ones back to Carol
//   Dave               a caller that runs mobile code fast: he runs his
//                      small model's inference himself, on a pulled copy
//   fixed placement    (the default) still runs on Bob, behind his queue
// Bob runs every call on his executors (--inline-budget-us 0), so Alice's
// inference waits behind Eve's calls as the seed's long inference does. A
// node run by default runs a call as short as this one in place, beside
// its busy executors; automatic placement measures that and keeps Alice's
// calls on Bob (--bob-in-place shows it).
// Every answer is checked against the inference computed here over the
// caller's copy of the model (exit 1 if one is wrong); where each call ran
// is what ferry reports per call (future::where) and the function itself
// (cx.node()).
//
//     ferry-rendezvous [--tls shm|tcp]      (starts its own two nodes)
#include <chrono>
#include <string>
#include <thread>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <ferry/runtime.hpp>

#include "common/local_cluster.hpp"
#include "inference.hpp"

using namespace rendezvous_case;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr std::uint32_t kBob = 0, kCarol = 1;

struct options {
  std::string tls = "shm";
  std::uint64_t model_kib = 1024;         // Alice's partition
  std::uint64_t busy_rounds = 10'000'000;  // one of Eve's calls (ms even on a quiet machine)
  unsigned window = 12;                   // Eve's calls in flight
  bool pin = true;                        // Bob on CPU 0, Carol on CPU 1
  bool bob_in_place = false;              // Bob as nodes run by default: short calls in place
};

std::string node_name(std::uint32_t node) {
  return node == kBob ? "Bob" : node == kCarol ? "Carol" : fmt::format("node {}", node);
}

// One call with `opts`; prints where it ran and why. True if the answer is right.
bool call(ferry::runtime& rt, std::string_view who, std::string_view caller_name, const ferry::call_options& opts,
          ferry::ref<std::uint64_t> model, const std::vector<std::uint64_t>& words, std::uint64_t input) {
  const auto t0 = clock_type::now();
  auto f = rt.invoke_with(opts, &infer, model, words.size(), input);
  const inference r = f.get();
  const double ms = std::chrono::duration<double, std::milli>(clock_type::now() - t0).count();
  const auto why = f.where();
  const bool right = r.value == infer_expected(words.data(), words.size(), input);
  const std::string ran = why.node == ferry::kCaller ? std::string(caller_name) : node_name(r.node);
  fmt::print("  {:<34} ran on {:<5} {:<8} {:>7.1f} ms  answer {}\n", who, ran,
             fmt::format("({})", to_string(why.choice)), ms, right ? "ok" : "WRONG");
  if (why.automatic) fmt::print("    why: {}\n", why.reason);
  return right;
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  CLI::App app{"rendezvous: the seed's Alice/Bob/Carol/Dave inference case on two local nodes, placement decided by "
               "ferry (placement::automatic)"};
  app.name("ferry-rendezvous");
  app.add_option("--tls", o.tls, "UCX transport between the processes")->check(CLI::IsMember({"shm", "tcp"}));
  app.add_option("--model-kib", o.model_kib, "Size of Alice's model partition, KiB")->check(CLI::Range(1, 16384));
  app.add_option("--busy-rounds", o.busy_rounds, "Work of one of the calls that saturate Bob")
      ->check(CLI::Range(1000, 1 << 30));
  app.add_option("--window", o.window, "Calls in flight on Bob")->check(CLI::Range(2, 256));
  app.add_flag("!--no-pin", o.pin, "Do not pin Bob to CPU 0 and Carol to CPU 1");
  app.add_flag("--bob-in-place", o.bob_in_place,
               "Run Bob as nodes run by default, where a call this short runs in place beside his busy executors "
               "(automatic placement then keeps Alice's calls on Bob), instead of on his executors behind Eve's");
  for (auto* opt : app.get_options()) opt->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  ::setenv("UCX_NET_DEVICES", "lo", 0);  // one host: loopback only unless told otherwise
  try {
    // Bob and Carol: two `ferry node` processes (Bob's saturated executors
    // kept off Carol's CPU, as if they were separate machines).
    ferry::bench::local_cluster cl(2, o.tls, "home",
                                   [&](std::uint32_t i) { return node_options(i, o.pin, !o.bob_in_place); });
    auto alice = cl.client();     // runs no mobile code
    auto eve = cl.client();       // the load on Bob
    auto dave = cl.client(4.0);   // runs mobile code, 4x a node's speed
    const auto [model, words] = make_model(*alice, o.model_kib * 128, kBob);
    const auto [small, small_words] = make_model(*dave, 512, kBob);  // Dave's: 4 KiB
    const auto cell = eve->objects().create<std::uint64_t>(1, ferry::on_node(kBob));
    fmt::print("Bob (node 0) holds Alice's {} KiB model partition and Dave's 4 KiB one; Carol (node 1) is idle "
               "(UCX {})\n", o.model_kib, o.tls);
    const ferry::call_options automatic{.placement = ferry::placement::automatic};
    int wrong = 0;

    fmt::print("idle cluster:\n");
    wrong += !call(*alice, "Alice, automatic (first call)", "Alice", automatic, model, words, 1);
    wrong += !call(*alice, "Alice, automatic", "Alice", automatic, model, words, 2);

    fmt::print("Eve keeps {} calls of {} rounds in flight on Bob...\n", o.window, o.busy_rounds);
    saturate load(*eve, cell, o.busy_rounds, o.window);
    if (!wait_for_queue(*alice, kBob, o.window / 3, std::chrono::seconds(30)) ||
        !wait_for_queue(*dave, kBob, o.window / 3, std::chrono::seconds(30)))
      throw ferry::error(ferry::make_error(ferry::errc::timeout, "Bob never reported a queue"));
    const auto bob = alice->nodes()[kBob].load;
    fmt::print("Bob saturated: {} calls queued, mean call {} us (his heartbeats)\n", bob.queued, bob.call_us);
    // Alice's measure of Bob (her idle calls) goes stale: the model decides again.
    std::this_thread::sleep_for(std::chrono::milliseconds(ferry::kObservedForMs));
    for (std::uint64_t i = 0; i < 5; ++i)
      wrong += !call(*alice, "Alice, automatic", "Alice", automatic, model, words, 10 + i);
    wrong += !call(*dave, "Dave, automatic (small model)", "Dave", automatic, small, small_words, 20);
    wrong += !call(*alice, "Alice, fixed placement (the owner)", "Alice", {}, model, words, 30);
    load.stop();
    if (load.failed() != 0) ++wrong;
    fmt::print("Eve's calls: {} done, {} failed\n", load.done(), load.failed());
    const auto carol = alice->nodes()[kCarol].load;
    fmt::print("Carol's heartbeats: {} calls on pulled data, {} bytes pulled\n", carol.pulled_calls,
               carol.pulled_bytes);
    fmt::print("{}\n", wrong == 0 ? "ok: every answer matches the caller's own inference" : "WRONG answers");
    return wrong == 0 ? 0 : 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "rendezvous: {}\n", e.what());
    return 1;
  }
}
