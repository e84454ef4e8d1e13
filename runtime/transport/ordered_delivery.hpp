// Frames handed to the handler in the order they arrived, when some arrive
// in two steps (a rendezvous: announced first, its bytes read later). Used by
// every backend with such a path (ucx.cpp, ofi.cpp): a frame that arrives
// whole while an earlier one is still being read waits behind it (copied);
// otherwise frames go to the handler straight from the backend's buffer.
// A large frame's buffer, once delivered, is kept for the next one read in
// two steps (buffer()): fresh memory is dear (transport.hpp, kReusedFrameBytes).
// Frames above that size are read into huge pages of their own (large_bytes),
// whose first touch costs a fraction of small pages'.
// Not thread-safe: the transport's driving thread only.
#pragma once

#include <cstdint>
#include <deque>
#include <span>
#include <vector>

#include "core/anonymous_mapping.hpp"
#include "transport.hpp"

namespace ferry::transport {

class ordered_delivery {
 public:
  /// A frame still arriving; stays valid until deliver() hands it over.
  struct slot {
    large_bytes frame;
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
  static void fill(slot* s, large_bytes&& frame) {
    s->frame = std::move(frame);
    s->arrived = true;
  }

  /// A buffer of `length` bytes to read a frame into: one a delivered frame
  /// left when it is large enough (its pages already touched), else new. Its
  /// bytes are not zeroed: the read writes every one.
  large_bytes buffer(std::size_t length) {
    large_bytes b;
    for (auto it = spare_.begin(); it != spare_.end(); ++it) {
      if (it->capacity() >= length) {
        b = std::move(*it);
        spare_.erase(it);
        break;
      }
    }
    b.resize(length);  // writes nothing (large_buffer_allocator default-initializes)
    return b;
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
      keep(std::move(frame));
      ++n;
    }
    return n;
  }

 private:
  void keep(large_bytes&& frame) {
    if (frame.capacity() <= kKeptFromBytes || frame.capacity() > kReusedFrameBytes) return;
    if (spare_.size() == kSpareLargeBuffers) spare_.erase(spare_.begin());  // the oldest goes
    spare_.push_back(std::move(frame));
  }
  /// Smaller frames (held copies) are not worth keeping.
  static constexpr std::size_t kKeptFromBytes = 64 << 10;

  std::deque<slot> queue_;  // references stay valid across push_back/pop_front
  std::vector<large_bytes> spare_;  // at most kSpareLargeBuffers
};

}  // namespace ferry::transport
