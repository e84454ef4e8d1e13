// ⑤ place/route: who owns an object, and where a request for it goes next.
// The one router of a process: clients and nodes route with the same rule.
//
// Two directory schemes, chosen per cluster (every member must use the same;
// docs/mobility.md, "Finding the owner"):
//
//  * home (the default): every object id has a *home* node, hash(id) mod N,
//    that is told the owner when the object is created or moved
//    (dir_register frames). Every process also keeps a cache of owners it
//    has learnt. To route a request for an object that is not in the local
//    store:
//      cache knows the owner     -> send there
//      otherwise                 -> send to the home node, which knows.
//  * e2e (end to end, like ARP): no homes. The cache is all a process
//    knows; on a miss it *discovers* the owner first (discovery.hpp: ask
//    every node, the owner answers), then sends the request there.
//    must_discover() says when.
// A home that knows no owner for an object asks every node first, as e2e
// does (must_discover()): the creator answers its client as it sends the
// home its registration, so a request can reach the home before it. A node
// whose own record says it owns the object (yet the store lacks it:
// removed), or a home that discovered no owner, has nowhere to send it:
// next_hop() is empty and the request fails with not_found.
//
// A cached owner goes stale when its object moves: a node that receives a
// call for an object it no longer has routes it onward the same way. A node
// that passes a request on tells the requester the owner (a dir_register
// *hint*), so its next request goes there directly. Every entry carries a
// version, the object's move count (its image's `moves` field) when that
// owner got it; hints and registrations carry it too, and an older one
// never replaces a newer one (learn()).
// Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string_view>
#include <unordered_map>

#include <ferry/object_id.hpp>

#include "core/last_answer.hpp"
#include "wire/frames.hpp"

namespace ferry::directory {

using wire::node_index;

/// How a cluster finds owners (see above).
enum class scheme : std::uint8_t { home, e2e };
/// "home" / "e2e"; anything else is nullopt.
inline std::optional<scheme> parse_scheme(std::string_view s) {
  if (s == "home") return scheme::home;
  if (s == "e2e") return scheme::e2e;
  return std::nullopt;
}

/// The home node of `id` in a cluster of `nodes` data nodes.
inline node_index home_of(const object_id& id, std::uint32_t nodes) {
  return static_cast<node_index>((id.hi ^ id.lo) % nodes);
}

class router {
 public:
  /// `self`: this process's member index (a client's is >= nodes);
  /// `nodes`: data nodes in the cluster (at least 1).
  router(node_index self, std::uint32_t nodes, directory::scheme how = scheme::home)
      : self_(self), nodes_(nodes), scheme_(how) {}

  [[nodiscard]] std::uint32_t nodes() const { return nodes_; }
  [[nodiscard]] directory::scheme scheme() const { return scheme_; }
  /// No owner of `id` is known, and it must be discovered before a request
  /// for it is routed: under e2e always; under home when this process is
  /// its home (a client never is), whose registration may still be on its
  /// way (above).
  [[nodiscard]] bool must_discover(const object_id& id) const {
    return (scheme_ == scheme::e2e || home_of(id) == self_) && !owner(id);
  }
  [[nodiscard]] node_index home_of(const object_id& id) const { return directory::home_of(id, nodes_); }

  /// Where a request for `id`, which is not in this process's store, goes
  /// next; empty when nobody has it (see above).
  [[nodiscard]] std::optional<node_index> next_hop(const object_id& id) const {
    if (const auto known = owner(id)) return *known == self_ ? std::nullopt : known;
    if (scheme_ == scheme::e2e) return std::nullopt;  // discover first (must_discover)
    const node_index home = home_of(id);
    if (home == self_) return std::nullopt;
    return home;
  }

  /// The owner this process has learnt, if any. A thread asking again
  /// about the object it asked about last, with no entry changed meanwhile,
  /// takes no lock (a warm call asks for every call).
  [[nodiscard]] std::optional<node_index> owner(const object_id& id) const {
    thread_local core::last_answer<object_id, std::optional<node_index>> last;
    const auto generation = generation_.load(std::memory_order_acquire);
    if (const auto* known = last.find(serial_, generation, id)) return *known;
    std::optional<node_index> known;
    {
      std::lock_guard lock(mu_);
      if (auto it = owners_.find(id); it != owners_.end()) known = it->second.owner;
    }
    last.keep(serial_, generation, id, known);
    return known;
  }
  /// The version (the object's move count) of the owner this process knows;
  /// 0 if it knows none.
  [[nodiscard]] std::uint64_t version(const object_id& id) const {
    std::lock_guard lock(mu_);
    auto it = owners_.find(id);
    return it == owners_.end() ? 0 : it->second.version;
  }
  /// Take `owner` as the owner of `id` as of its `version`-th move, unless
  /// this process knows a later one: an owner hint that arrives after a
  /// newer one (a delayed message from before a move) changes nothing.
  /// Equal versions name the same owner, except when a move failed and its
  /// source took the object back (then the source learns it itself).
  /// True if the entry now says `owner`.
  bool learn(const object_id& id, node_index owner, std::uint64_t version) {
    std::lock_guard lock(mu_);
    auto [it, fresh] = owners_.try_emplace(id, location{owner, version});
    if (!fresh && version < it->second.version) return it->second.owner == owner;
    it->second = {owner, version};
    changed();
    return true;
  }
  /// How many owners this process knows (diagnostics).
  [[nodiscard]] std::size_t size() const {
    std::lock_guard lock(mu_);
    return owners_.size();
  }
  void forget(const object_id& id) {
    std::lock_guard lock(mu_);
    owners_.erase(id);
    changed();
  }
  /// Drop every entry naming `owner`: it restarted, and re-registers what it
  /// still holds (a persistent store) with the objects' homes.
  void forget_owner(node_index owner) {
    std::lock_guard lock(mu_);
    std::erase_if(owners_, [&](const auto& e) { return e.second.owner == owner; });
    changed();
  }
  /// A dir_register frame: registration at the home, or a hint to a
  /// requester, as of the object's `version`-th move (older than what this
  /// process knows: ignored). Owners outside the cluster are ignored (bad
  /// input). A message never makes this process its own owner: whether it
  /// holds an object is its store's to say, and a hint naming it can arrive
  /// after it moved the object on (it would then route requests for it
  /// nowhere).
  void apply(const wire::dir_register_body& d) {
    if (d.owner == wire::kNoNode) forget(d.id);
    else if (d.owner < nodes_ && d.owner != self_) learn(d.id, d.owner, d.version);
  }

 private:
  node_index self_;
  std::uint32_t nodes_;
  directory::scheme scheme_;
  struct location {
    node_index owner;
    std::uint64_t version;  ///< the object's move count when `owner` got it
  };
  // Under mu_: owner()'s remembered answers from before are stale.
  void changed() { generation_.fetch_add(1, std::memory_order_release); }

  mutable std::mutex mu_;
  std::unordered_map<object_id, location> owners_;
  const std::uint64_t serial_ = core::next_table_serial();  // core/last_answer.hpp
  std::atomic<std::uint64_t> generation_{0};                // entries changed (under mu_)
};

}  // namespace ferry::directory
