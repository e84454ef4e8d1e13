// A benchmark's warm-up ends when the nodes run the code it measures in its
// final form: a node's JIT recompiles hot code optimized in the background
// (docs/jit.md, "Tiers"), and until that is done the calls run the fast tier
// while the compiles take CPU time from them. The nodes say how many
// recompiles they have in hand with every heartbeat (node_load::recompiling).
#pragma once

#include <chrono>
#include <functional>
#include <thread>

#include <ferry/runtime.hpp>

namespace ferry::bench {

/// Wait until no live node of `rt`'s cluster reports a recompile in hand.
/// A heartbeat leaves each node every 100 ms and a call's run asks for its
/// recompile as it ends, so the wait first lets 250 ms pass: the reports it
/// then reads were sent after the calls made before it. `waiting(n)` is
/// called, at most every second, while n nodes still recompile. False if
/// some node still did at `timeout`.
inline bool wait_for_optimized_code(const ferry::runtime& rt, std::chrono::milliseconds timeout,
                                    const std::function<void(std::size_t)>& waiting = {}) {
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  auto told = start;
  std::this_thread::sleep_for(std::chrono::milliseconds(250));
  for (;;) {
    std::size_t busy = 0;
    for (const auto& n : rt.nodes()) busy += n.alive && n.load.recompiling > 0;
    if (busy == 0) return true;
    if (clock::now() - start > timeout) return false;
    if (waiting && clock::now() - told >= std::chrono::seconds(1)) {
      told = clock::now();
      waiting(busy);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace ferry::bench
