// Frames handed to the handler in the order they arrived, when some arrive
// in two steps (a rendezvous: announced first, its bytes read later). Used by
// every backend with such a path (ucx.cpp, ofi.cpp): a frame that arrives
// whole while an earlier one is still being read waits behind it (copied);
// otherwise frames go to the handler straight from the backend's buffer.
// Not thread-safe: the transport's driving thread only.
#pragma once

#include <cstdint>
#include <deque>
#include <span>
#include <vector>

namespace ferry::transport {

class ordered_delivery {
 public:
  /// A frame still arriving; stays valid until deliver() hands it over.
  struct slot {
    std::vector<std::uint8_t> frame;
    bool arrived = false;
  };

  /// Nothing is waiting: a frame that arrives whole may be delivered at once.
  [[nodiscard]] bool empty() const { return queue_.empty(); }
  /// deliver() has something to hand over now.
  [[nodiscard]] bool ready() const { return !queue_.empty() && queue_.front().arrived; }

  /// A whole frame that must wait behind frames still arriving (copied).
  void hold(std::span<const std::uint8_t> frame) { queue_.push_back({{frame.begin(), frame.end()}, true}); }
  /// Reserve the place of a frame announced now, its bytes read later.
  slot* reserve() { return &queue_.emplace_back(); }
  /// The bytes of a reserved frame arrived (empty: it was lost — skipped).
  static void fill(slot* s, std::vector<std::uint8_t>&& frame) {
    s->frame = std::move(frame);
    s->arrived = true;
  }

  /// Hand every frame that can go, in order, to `handler`; returns how many
  /// entries it consumed. The handler may re-enter the transport.
  template <class Handler>
  unsigned deliver(Handler&& handler) {
    unsigned n = 0;
    while (ready()) {
      auto frame = std::move(queue_.front().frame);
      queue_.pop_front();
      if (!frame.empty()) handler(std::span<const std::uint8_t>(frame));
      ++n;
    }
    return n;
  }

 private:
  std::deque<slot> queue_;  // references stay valid across push_back/pop_front
};

}  // namespace ferry::transport
