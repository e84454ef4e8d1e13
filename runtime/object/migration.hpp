// ③⑤ Moving an object to another node: the byte copy, the directory update,
// and the gate that keeps calls and object operations exactly-once while an
// object moves. The protocol and its ordering are in docs/mobility.md,
// "Migration"; in short, at the source (the owner):
//
//   1. freeze    object_migrate arrives: new work on the object (invokes,
//                object frames, further moves) is held here from now on
//   2. drain     wait until work admitted before the freeze has ended (its
//                writes sealed: durable, for a persistent store)
//   3. copy      export the sealed image, send it (object_image) to the
//                destination, which imports it (durably) and registers
//                itself with the object's home, then acks
//   4. switch    only after that ack: learn the new owner, remove the local
//                copy, answer the requester
//   5. release   re-inject the held frames: they are routed to the new owner
//                (a call passed on tells its caller the new owner)
//
// If the destination fails or dies before its ack, the source keeps the
// object (registering itself with the home again) and the held frames run
// here. An acknowledged write is therefore always in the copy that owns the
// object: writes are frozen from step 1 until the switch.
//
// Threads: admit() and the frame handlers run on the driving thread;
// release() on any thread; the copy runs on an object thread (it waits for
// store I/O and for the destination).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <unordered_map>
#include <vector>

#include <ferry/store.hpp>

#include "calls/call_table.hpp"
#include "directory/router.hpp"
#include "exec/dispatch.hpp"
#include "session/member.hpp"
#include "wire/frames.hpp"

namespace ferry::object {

class migration {
 public:
  /// `reinject`: the node's frame entry, for held frames once a move ends
  /// (called on the driving thread).
  migration(store& objects, directory::router& router, session::member& member, calls::call_table& calls,
            exec::dispatch_policy& policy, std::function<void(wire::frame&&)> reinject)
      : store_(objects),
        router_(router),
        member_(member),
        calls_(calls),
        policy_(policy),
        reinject_(std::move(reinject)) {}

  /// Driving thread: may work on object `id` (an invoke routed by it, an
  /// object frame) start now? Then it is counted until release(id). False
  /// while `id` moves: `f` is taken and held until the move ends.
  bool admit(const object_id& id, wire::frame& f);
  /// Work admitted for `id` has ended (any thread).
  void release(const object_id& id) {
    if (!id.is_nil()) active_[stripe(id)].fetch_sub(1, std::memory_order_release);
  }

  /// object_migrate (driving thread): move the object, or pass the request
  /// on towards its owner.
  void on_migrate(wire::frame&& f);
  /// object_image (an object thread): store the image, become its owner.
  void on_image(const wire::frame& f);

  /// Objects moved away from this node (diagnostics, tests).
  [[nodiscard]] std::uint64_t moved_out() const { return moved_out_.load(std::memory_order_relaxed); }

 private:
  static constexpr std::size_t kStripes = 256;
  static std::size_t stripe(const object_id& id) { return std::hash<object_id>{}(id) % kStripes; }

  /// Steps 2–4 (an object thread); the status the requester gets.
  status move(const object_id& id, wire::node_index to);
  /// Step 5 (driving thread).
  void finish(const object_id& id);
  void answer(const wire::frame& f, const status& s);

  store& store_;
  directory::router& router_;
  session::member& member_;
  calls::call_table& calls_;
  exec::dispatch_policy& policy_;
  std::function<void(wire::frame&&)> reinject_;

  /// Work in progress per stripe of object ids: a move waits for its
  /// object's stripe to drain (other objects in the stripe only delay it).
  std::array<std::atomic<std::uint32_t>, kStripes> active_{};
  std::atomic<std::uint32_t> moving_count_{0};  ///< entries in moving_: the warm path reads only this
  std::mutex mu_;
  std::unordered_map<object_id, std::vector<wire::frame>> moving_;  ///< held frames by moving object
  std::atomic<std::uint64_t> moved_out_{0};
};

}  // namespace ferry::object
