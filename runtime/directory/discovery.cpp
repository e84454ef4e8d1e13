#include "directory/discovery.hpp"

#include <condition_variable>
#include <memory>
#include <thread>

#include <fmt/format.h>

namespace ferry::directory {

void discovery::find(const object_id& id, done_fn done) {
  std::vector<node_index> ask;
  {
    std::lock_guard lock(mu_);
    auto [it, fresh] = pending_.try_emplace(id);
    it->second.done.push_back(std::move(done));
    if (!fresh) return;  // a lookup of this id is running: its answer is ours
    ++lookups_;
    for (node_index n = 0; n < router_.nodes(); ++n)
      if (n != member_.self()) it->second.waiting.insert(n);
    ask.assign(it->second.waiting.begin(), it->second.waiting.end());
    if (ask.empty()) {
      auto callbacks = settle(it);
      for (auto& f : callbacks) f(std::nullopt);
      return;
    }
  }
  // Call id 1: answers to it are told apart from registrations and hints (0).
  const wire::frame f{wire::frame_type::dir_lookup, member_.self(), 1, wire::object_remove_body{id}};
  for (const node_index n : ask)
    if (!member_.send(n, f).ok()) member_.post([this, n, id] { on_answer(n, {id, wire::kNoNode}); });
}

void discovery::find_then(const object_id& id, std::function<void()> found, std::function<void(status)> missing) {
  find(id, [this, id, found = std::move(found), missing = std::move(missing)](std::optional<node_index> owner) mutable {
    member_.post([id, owner, found = std::move(found), missing = std::move(missing)] {
      if (owner) found();
      else missing(nowhere(id));
    });
  });
}

status discovery::nowhere(const object_id& id) {
  return make_error(errc::not_found, fmt::format("no node holds object {} (asked every node)", id.to_string()));
}

std::optional<node_index> discovery::find_wait(const object_id& id, std::chrono::milliseconds limit) {
  struct result_slot {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    std::optional<node_index> owner;
  };
  auto slot = std::make_shared<result_slot>();
  find(id, [slot](std::optional<node_index> owner) {
    std::lock_guard lock(slot->mu);
    slot->owner = owner;
    slot->done = true;
    slot->cv.notify_all();
  });
  std::unique_lock lock(slot->mu);
  // A client thread may be the one that drives progress: wait in slices,
  // letting the member progress meanwhile.
  const auto until = std::chrono::steady_clock::now() + limit;
  while (!slot->done && std::chrono::steady_clock::now() < until) {
    lock.unlock();
    if (!member_.drive_once()) std::this_thread::yield();
    lock.lock();
    slot->cv.wait_for(lock, std::chrono::microseconds(200), [&] { return slot->done; });
  }
  return slot->owner;
}

std::vector<discovery::done_fn> discovery::settle(std::unordered_map<object_id, lookup>::iterator it) {
  auto callbacks = std::move(it->second.done);
  pending_.erase(it);
  return callbacks;
}

void discovery::on_answer(node_index from, const wire::dir_register_body& d) {
  std::vector<done_fn> callbacks;
  std::optional<node_index> owner;
  {
    std::lock_guard lock(mu_);
    auto it = pending_.find(d.id);
    if (it == pending_.end()) return;
    if (d.owner != wire::kNoNode && d.owner < router_.nodes()) {
      owner = d.owner;
    } else {
      it->second.waiting.erase(from);
      if (!it->second.waiting.empty()) return;
    }
    callbacks = settle(it);
  }
  if (owner) router_.learn(d.id, *owner, d.version);
  for (auto& f : callbacks) f(owner);
}

void discovery::peer_dead(node_index who) {
  std::vector<object_id> ids;
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, l] : pending_)
      if (l.waiting.count(who)) ids.push_back(id);
  }
  for (const auto& id : ids) on_answer(who, {id, wire::kNoNode});
}

}  // namespace ferry::directory
