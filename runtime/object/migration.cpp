#include "object/migration.hpp"

#include <chrono>
#include <cstring>
#include <thread>

#include <fmt/format.h>

#include "directory/notify.hpp"

namespace ferry::object {

using wire::frame;
using wire::frame_type;

namespace {
// How long a move waits for work already running on its object, and for the
// destination's answer, before it gives up (the object stays here).
constexpr auto kDrainLimit = std::chrono::seconds(5);
constexpr auto kCopyLimit = std::chrono::seconds(30);
}  // namespace

bool migration::admit(const object_id& id, frame& f) {
  if (id.is_nil()) return true;
  if (moving_count_.load(std::memory_order_acquire) != 0) {
    std::lock_guard lock(mu_);
    if (auto it = moving_.find(id); it != moving_.end()) {
      it->second.push_back(std::move(f));
      return false;
    }
  }
  active_[stripe(id)].fetch_add(1, std::memory_order_acq_rel);
  return true;
}

void migration::answer(const frame& f, const status& s) {
  if (s.ok()) {
    (void)member_.send(f.source, {frame_type::ack, member_.self(), f.call, wire::empty_body{}});
    return;
  }
  (void)member_.send(f.source, {frame_type::error, member_.self(), f.call, wire::error_body{s.code(), s.message()}});
}

void migration::on_migrate(frame&& f) {
  const auto [id, to] = std::get<wire::dir_register_body>(f.body);
  if (!store_.stat(id)) {  // not (or no longer) here: towards the owner, like any object frame
    const auto next = router_.next_hop(id);
    if (!next) return answer(f, make_error(errc::not_found, fmt::format("no node holds object {}", id.to_string())));
    (void)member_.send(*next, f);
    directory::hint_owner(member_, router_, f.source, id, *next);
    return;
  }
  if (to >= router_.nodes())
    return answer(f, make_error(errc::invalid_argument,
                                fmt::format("cannot move object {} to node {}: the cluster has {} nodes", id.to_string(),
                                            to, router_.nodes())));
  if (to == member_.self()) return answer(f, {});
  {
    std::lock_guard lock(mu_);
    if (auto it = moving_.find(id); it != moving_.end()) {  // a second move waits for the first
      it->second.push_back(std::move(f));
      return;
    }
    moving_.emplace(id, std::vector<frame>{});
    moving_count_.fetch_add(1, std::memory_order_acq_rel);
  }
  policy_.blocking([this, f = std::move(f), id, to] {
    status s;
    try {
      s = move(id, to);
    } catch (const std::bad_alloc&) {
      s = make_error(errc::out_of_memory, fmt::format("node {} ran out of memory moving object {}", member_.self(),
                                                      id.to_string()));
    }
    answer(f, s);
    member_.post([this, id] { finish(id); });
  });
}

status migration::move(const object_id& id, wire::node_index to) {
  // 2. drain: work admitted before the freeze ends (and seals its writes).
  const auto drain_until = std::chrono::steady_clock::now() + kDrainLimit;
  while (active_[stripe(id)].load(std::memory_order_acquire) != 0) {
    if (std::chrono::steady_clock::now() > drain_until)
      return make_error(errc::timeout, fmt::format("object {} stayed busy for {} s: not moved", id.to_string(),
                                                   kDrainLimit.count()));
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  // 3. copy: the sealed image to the destination, which stores it durably
  // and registers itself with the home before it answers.
  auto image = store_.export_image(id);
  if (!image) return image.error();
  if (image->size() + 4096 > wire::kMaxFrame)
    return make_error(errc::too_large, fmt::format("object {} ({} bytes) is larger than a frame: not moved",
                                                   id.to_string(), image->size()));
  auto w = std::make_shared<calls::answer_waiter>();
  const std::uint64_t call = calls_.add({to, {}, wire::kNoNode, false}, calls::completion_for(w));
  std::vector<std::uint8_t> bytes(image->size());
  std::memcpy(bytes.data(), image->data(), bytes.size());
  image->clear();
  if (auto s = member_.send(to, {frame_type::object_image, member_.self(), call, wire::object_data_body{std::move(bytes)}});
      !s.ok())
    (void)calls_.complete(call, {}, std::move(s));
  if (!w->wait_until(std::chrono::steady_clock::now() + kCopyLimit)) {
    calls_.cancel(call);
    w->s = make_error(errc::timeout, fmt::format("node {} did not take object {} within {} s", to, id.to_string(),
                                                 kCopyLimit.count()));
  }
  if (!w->s.ok()) {
    // The object stays here; the destination may have registered itself
    // with the home before it failed: register this node again.
    router_.learn(id, member_.self());
    directory::tell_home(member_, router_, id, member_.self());
    return make_error(w->s.code(), fmt::format("moving object {} to node {}: {}", id.to_string(), to, w->s.message()));
  }
  // 4. switch: the destination owns it; requests that still come here are
  // passed on there.
  router_.learn(id, to);
  if (auto removed = store_.remove(id); !removed)
    return make_error(removed.code(), fmt::format("object {} moved to node {}, but removing it here failed: {}",
                                                  id.to_string(), to, removed.error().message()));
  moved_out_.fetch_add(1, std::memory_order_relaxed);
  return {};
}

void migration::finish(const object_id& id) {
  std::vector<frame> held;
  {
    std::lock_guard lock(mu_);
    auto it = moving_.find(id);
    if (it == moving_.end()) return;
    held = std::move(it->second);
    moving_.erase(it);
    moving_count_.fetch_sub(1, std::memory_order_acq_rel);
  }
  for (auto& f : held) reinject_(std::move(f));
}

void migration::on_image(const frame& f) {
  const auto& image = std::get<wire::object_data_body>(f.body).bytes;
  if (f.source >= router_.nodes())
    return answer(f, make_error(errc::invalid_argument, "only a node moves objects"));
  auto stored = store_.import_image(std::as_bytes(std::span(image)));
  if (!stored) return answer(f, stored.error());
  router_.learn(stored->id, member_.self());
  directory::tell_home(member_, router_, stored->id, member_.self());
  answer(f, {});
}

}  // namespace ferry::object
