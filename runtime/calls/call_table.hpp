// ④⑨ The one table of a process's outstanding requests: a client's calls
// and object operations, a node's nested calls, and its code requests. Each
// entry completes exactly once — with the answer, or with an error when its
// first hop or its target's owner is declared dead, or when the table is
// closed — so there is one peer-death sweep, not one per kind of request.
//
// Request ids are what replies are matched by. They start at a random
// 64-bit value per table, so a process that takes over the member index of
// one that exited (or a new ferry::runtime in the same process) never
// matches answers meant for its predecessor: those find no entry, are
// dropped, and counted (late_answers()).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <optional>
#include <mutex>
#include <span>
#include <memory>
#include <vector>

#include <ferry/object_id.hpp>
#include <ferry/status.hpp>

#include "wire/frames.hpp"

namespace ferry::calls {

using wire::node_index;

/// How a request ends: called once, with the answer's bytes (a view, valid
/// only during the call) and an ok status, or with an error. A plain
/// function and the object it acts on, which the entry keeps alive: making
/// one allocates nothing (completion_for()).
struct completion {
  void (*fn)(void* target, std::span<const std::uint8_t> bytes, status&& s) = nullptr;
  std::shared_ptr<void> target;
};

/// A completion that calls `t->on_answer(bytes, status&&)`.
template <class T>
completion completion_for(std::shared_ptr<T> t) {
  return {[](void* p, std::span<const std::uint8_t> bytes, status&& s) {
            static_cast<T*>(p)->on_answer(bytes, std::move(s));
          },
          std::move(t)};
}

/// The answer to one request, for a thread that may block until it comes
/// (an executor, an object thread — never the driving thread, which
/// delivers it): add() the request with completion_for(waiter), then wait().
struct answer_waiter {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  std::vector<std::uint8_t> bytes;  ///< the answer's bytes, once done
  status s;                         ///< its status, once done
  void on_answer(std::span<const std::uint8_t> answer, status&& st) {
    std::lock_guard lock(mu);
    bytes.assign(answer.begin(), answer.end());
    s = std::move(st);
    done = true;
    cv.notify_all();
  }
  /// Wait until answered (true) or `deadline` passes (false).
  template <class Clock, class Duration>
  bool wait_until(std::chrono::time_point<Clock, Duration> deadline) {
    std::unique_lock lock(mu);
    return cv.wait_until(lock, deadline, [&] { return done; });
  }
};

/// Who a request depends on: it fails when one of them is declared dead.
struct depends_on {
  node_index first_hop = wire::kNoNode;
  object_id target;  ///< nil: none (its owner is looked up at sweep time)
  /// A node that holds something the request needs (a code holder).
  node_index holder = wire::kNoNode;
  /// The request may move from node to node (a call whose code forwards):
  /// where it is now is not known here, so the death of any node fails it
  /// (at most once: a late answer is dropped). A call that hung until its
  /// deadline because it passed through a node that died is worse.
  bool travels = false;
};

class call_table {
 public:
  call_table();
  call_table(const call_table&) = delete;
  call_table& operator=(const call_table&) = delete;

  /// A new request; `done` runs once, on whichever thread completes it
  /// (never under the table's lock). Allocates only when the table grows
  /// (it doubles when half full).
  std::uint64_t add(depends_on deps, completion done);
  /// Record where a request went first (once routed).
  void set_first_hop(std::uint64_t id, node_index hop);
  /// Complete request `id`; false (and counted) if there is no such entry:
  /// a late answer after a timeout or for a predecessor's request.
  bool complete(std::uint64_t id, std::span<const std::uint8_t> bytes, status s);
  /// Complete the request answer frame `f` names (reply, object_data,
  /// code_response, ack, error: the frame types that answer a request);
  /// false for other frames and, counted, for late answers. Its error
  /// message may be moved out of `f`.
  bool answer(wire::frame& f);
  /// Remove `id` without completing it (its waiter gave up); false if gone.
  bool cancel(std::uint64_t id);
  /// Fail every request that depends on `who` with `s`. `owner_of` maps a
  /// target to the owner this process knows; `who_is_node`: `who` is a data
  /// node (travelling requests depend on every node).
  void fail_peer(node_index who, bool who_is_node,
                 const std::function<std::optional<node_index>(const object_id&)>& owner_of, const status& s);
  /// Fail every request with `s` (the process is going away).
  void fail_all(const status& s);

  [[nodiscard]] std::size_t outstanding() const;
  [[nodiscard]] std::uint64_t late_answers() const { return late_.load(std::memory_order_relaxed); }

 private:
  // Open addressing with linear probing over a power-of-two array: ids are
  // consecutive, so the slot of an id is id & mask and a warm table never
  // allocates. Id 0 marks a free slot (ids skip it).
  struct entry {
    std::uint64_t id = 0;
    depends_on deps;
    completion done;
  };
  entry* find(std::uint64_t id);
  void insert(entry&& e);
  void erase(entry* e);
  void grow();
  /// Take out every entry `lost` selects (lock held).
  template <class Pred>
  std::vector<entry> take_if(Pred lost);

  mutable std::mutex mu_;
  std::vector<entry> slots_;
  std::size_t used_ = 0;
  std::uint64_t next_;
  std::atomic<std::uint64_t> late_{0};
};

}  // namespace ferry::calls
