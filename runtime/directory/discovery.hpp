// ⑤ Discovery, for the end-to-end directory scheme (router.hpp): a process
// that does not know an object's owner asks every node (dir_lookup, like an
// ARP request); the owner answers with a dir_register naming itself, every
// other node with a dir_register naming nobody (kNoNode). The first owner
// named ends the lookup; when every node has said "not me" (or died), the
// object is nowhere. Lookups for one id run once: later askers join.
//
// Threads: find() and find_wait() from any thread (find_wait() blocks: never
// on the driving thread); on_answer() and peer_dead() on the driving thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <unordered_map>
#include <vector>

#include "directory/router.hpp"
#include "session/member.hpp"

namespace ferry::directory {

class discovery {
 public:
  using done_fn = std::function<void(std::optional<node_index>)>;

  discovery(router& r, session::member& member) : router_(r), member_(member) {}

  /// Ask every node (but this one) who owns `id`; `done(owner)` runs once,
  /// with nullopt when no node has it. The owner is also learnt.
  void find(const object_id& id, done_fn done);
  /// The same, waiting at most `limit` (nullopt also on timeout).
  std::optional<node_index> find_wait(const object_id& id, std::chrono::milliseconds limit);
  /// find() for a request that waits for the lookup without holding a
  /// thread: then, on the driving thread, `found()` once a node has named
  /// itself the owner (learnt: the request can be taken again from the
  /// start), else `missing(nowhere(id))`.
  void find_then(const object_id& id, std::function<void()> found, std::function<void(status)> missing);
  /// The not_found error of a lookup no node answered with itself.
  static status nowhere(const object_id& id);
  /// Where a request for `id`, which is not in this process's store, goes
  /// next (router::next_hop), after a lookup of at most `limit` when the
  /// router says one must come first (router::must_discover); empty when
  /// no node has it. Blocks like find_wait().
  std::optional<node_index> next_hop_wait(const object_id& id, std::chrono::milliseconds limit) {
    if (router_.must_discover(id)) (void)find_wait(id, limit);
    return router_.next_hop(id);
  }

  /// A dir_register frame from `from`: answers a lookup of `d.id` if one runs.
  void on_answer(node_index from, const wire::dir_register_body& d);
  /// `who` will not answer: count it as "not me" in every lookup.
  void peer_dead(node_index who);

  /// Lookups this process started (each is one broadcast round trip).
  [[nodiscard]] std::uint64_t lookups() const {
    std::lock_guard lock(mu_);
    return lookups_;
  }

 private:
  struct lookup {
    std::set<node_index> waiting;  ///< nodes that have not answered yet
    std::vector<done_fn> done;
  };
  /// End the lookup of `it` with `owner` (lock held; the callbacks run after).
  std::vector<done_fn> settle(std::unordered_map<object_id, lookup>::iterator it);

  router& router_;
  session::member& member_;
  mutable std::mutex mu_;
  std::unordered_map<object_id, lookup> pending_;
  std::uint64_t lookups_ = 0;
};

}  // namespace ferry::directory
