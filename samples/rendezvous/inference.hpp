// The seed's rendezvous case (Alice, Bob, Carol, Dave: "Don't Let RPCs
// Constrain Your API", HotNets '21, section 2): inference over a model
// partition that lives on one node, and the load that saturates that node.
// One source for samples/rendezvous, `ferry bench placement` and
// tests/runtime/test_placement.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <ferry/runtime.hpp>

namespace rendezvous_case {

/// An answer and where it was computed.
struct inference {
  std::uint64_t value = 0;
  std::uint32_t node = 0;  ///< cx.node() where the function ran
  std::uint32_t pad = 0;
};

/// "Inference": a deterministic mix of the `count` words of `model` with
/// `input`; it only reads the model, so it may run on a pulled copy.
[[ferry::mobile]] inference infer(ferry::context& cx, ferry::ref<std::uint64_t> model, std::uint64_t count,
                                  std::uint64_t input);
/// The same, computed by the caller on its own copy of the words.
std::uint64_t infer_expected(const std::uint64_t* model, std::uint64_t count, std::uint64_t input);

/// `rounds` rounds of arithmetic where `cell` lives (keeps an executor busy);
/// returns the mix.
[[ferry::mobile]] std::uint64_t busy(ferry::context& cx, ferry::ref<std::uint64_t> cell, std::uint64_t rounds);

/// A model partition of `words` words on `node`, and its words (kept by the
/// caller to check answers).
std::pair<ferry::ref<std::uint64_t>, std::vector<std::uint64_t>> make_model(ferry::runtime& rt, std::uint64_t words,
                                                                            std::uint32_t node);

/// Extra `ferry node` options for node `node` of the case, Bob being node
/// 0: with `pin`, Bob on CPU 0 and the others on CPU 1 (his saturated
/// executors keep off the CPU of the nodes meant to be idle, as if they
/// were separate machines); with `bob_queued`, Bob runs every call on his
/// executors (--inline-budget-us 0), so a call waits behind his queue as a
/// long inference would, instead of running in place beside it.
std::vector<std::string> node_options(std::uint32_t node, bool pin, bool bob_queued);

/// Wait (up to `timeout`) until `rt` has heard, with `node`'s heartbeats,
/// that at least `queued` calls wait there and that enough calls ended (12)
/// for its mean call time to show them. False on timeout.
bool wait_for_queue(ferry::runtime& rt, std::uint32_t node, std::uint32_t queued, std::chrono::milliseconds timeout);

/// Keeps the executors of the node holding `cell` busy with `window` calls
/// of busy(`rounds`) in flight, sent by `rt` from a thread of its own, until
/// stopped or destroyed.
class saturate {
 public:
  saturate(ferry::runtime& rt, ferry::ref<std::uint64_t> cell, std::uint64_t rounds, std::size_t window)
      : thread_([this, &rt, cell, rounds, window] {
          std::deque<ferry::future<std::uint64_t>> inflight;
          while (!stop_.load()) {
            while (inflight.size() < window) inflight.push_back(rt.invoke(&busy, cell, rounds));
            if (inflight.front().try_get()) ++done_;
            else ++failed_;
            inflight.pop_front();
          }
          for (auto& f : inflight) (void)f.try_get();
        }) {}
  ~saturate() { stop(); }
  saturate(const saturate&) = delete;
  saturate& operator=(const saturate&) = delete;
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  std::uint64_t done() const { return done_; }
  std::uint64_t failed() const { return failed_; }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> done_{0}, failed_{0};
  std::thread thread_;
};

}  // namespace rendezvous_case
