// ⑤ place/route: who owns an object.
//
// Every object id has a *home* node, hash(id) mod N, that is told the owner
// when the object is created (dir_register frames). Every process also keeps
// a cache of owners it has learnt. To route a call on an object:
//   local store has it        -> run here
//   cache knows the owner     -> send there
//   otherwise                 -> send to the home node, which knows.
// A cached owner may go stale once objects migrate (a later stage): a node
// that receives a call for an object it no longer has routes it onward the
// same way, and `forget()` drops the stale entry. Thread-safe.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <unordered_map>

#include <ferry/object_id.hpp>

#include "wire/frames.hpp"

namespace ferry::directory {

using wire::node_index;

/// The home node of `id` in a cluster of `nodes` data nodes.
inline node_index home_of(const object_id& id, std::uint32_t nodes) {
  return static_cast<node_index>((id.hi ^ id.lo) % nodes);
}

class owner_cache {
 public:
  void learn(const object_id& id, node_index owner) {
    std::lock_guard lock(mu_);
    owners_[id] = owner;
  }
  [[nodiscard]] std::optional<node_index> owner(const object_id& id) const {
    std::lock_guard lock(mu_);
    auto it = owners_.find(id);
    if (it == owners_.end()) return std::nullopt;
    return it->second;
  }
  void forget(const object_id& id) {
    std::lock_guard lock(mu_);
    owners_.erase(id);
  }
  /// Drop every entry naming `owner`: it restarted, and re-registers what it
  /// still holds (a persistent store) with the objects' homes.
  void forget_owner(node_index owner) {
    std::lock_guard lock(mu_);
    std::erase_if(owners_, [&](const auto& e) { return e.second == owner; });
  }

 private:
  mutable std::mutex mu_;
  std::unordered_map<object_id, node_index> owners_;
};

}  // namespace ferry::directory
