#include "calls/call_table.hpp"

#include <sys/random.h>

namespace ferry::calls {

namespace {
std::uint64_t random_start() {
  std::uint64_t v = 0;
  std::size_t got = 0;
  while (got < sizeof v) {
    const ssize_t n = ::getrandom(reinterpret_cast<char*>(&v) + got, sizeof v - got, 0);
    if (n > 0) got += static_cast<std::size_t>(n);
  }
  return v | 1;  // never 0 (a free slot)
}
constexpr std::size_t kInitialSlots = 64;
}  // namespace

call_table::call_table() : slots_(kInitialSlots), next_(random_start()) {}

call_table::entry* call_table::find(std::uint64_t id) {
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t i = id & mask;; i = (i + 1) & mask) {
    if (slots_[i].id == id) return &slots_[i];
    if (slots_[i].id == 0) return nullptr;
  }
}

void call_table::insert(entry&& e) {
  const std::size_t mask = slots_.size() - 1;
  std::size_t i = e.id & mask;
  while (slots_[i].id != 0) i = (i + 1) & mask;
  slots_[i] = std::move(e);
  ++used_;
}

void call_table::erase(entry* e) {
  // Backward-shift deletion: later entries of the probe run move up, so
  // lookups never need tombstones.
  const std::size_t mask = slots_.size() - 1;
  std::size_t hole = static_cast<std::size_t>(e - slots_.data());
  slots_[hole] = entry{};
  --used_;
  for (std::size_t j = (hole + 1) & mask; slots_[j].id != 0; j = (j + 1) & mask) {
    const std::size_t home = slots_[j].id & mask;
    // Move j into the hole unless its home lies cyclically in (hole, j].
    const bool stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
    if (stays) continue;
    slots_[hole] = std::move(slots_[j]);
    slots_[j] = entry{};
    hole = j;
  }
}

void call_table::grow() {
  std::vector<entry> old(slots_.size() * 2);
  old.swap(slots_);
  used_ = 0;
  for (auto& e : old)
    if (e.id != 0) insert(std::move(e));
}

std::uint64_t call_table::add(depends_on deps, completion done) {
  std::lock_guard lock(mu_);
  if ((used_ + 1) * 2 > slots_.size()) grow();
  std::uint64_t id = next_++;
  if (id == 0) id = next_++;
  insert(entry{id, deps, std::move(done)});
  return id;
}

void call_table::set_first_hop(std::uint64_t id, node_index hop) {
  std::lock_guard lock(mu_);
  if (auto* e = find(id)) e->deps.first_hop = hop;
}

bool call_table::complete(std::uint64_t id, std::span<const std::uint8_t> bytes, status s) {
  completion done;
  {
    std::lock_guard lock(mu_);
    auto* e = id == 0 ? nullptr : find(id);
    if (!e) {
      late_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    done = std::move(e->done);
    erase(e);
  }
  done.fn(done.target.get(), bytes, std::move(s));
  return true;
}

bool call_table::answer(wire::frame& f) {
  using wire::frame_type;
  switch (f.type) {
    case frame_type::reply: return complete(f.call, std::get<wire::reply_body>(f.body).result, {});
    case frame_type::object_data: return complete(f.call, std::get<wire::object_data_body>(f.body).bytes, {});
    case frame_type::code_response: return complete(f.call, std::get<wire::code_response_body>(f.body).blob, {});
    case frame_type::ack: return complete(f.call, {}, {});
    case frame_type::error: {
      auto& e = std::get<wire::error_body>(f.body);
      return complete(f.call, {}, make_error(e.code, std::move(e.message)));
    }
    default: return false;
  }
}

bool call_table::cancel(std::uint64_t id) {
  completion dropped;  // released outside the lock
  std::lock_guard lock(mu_);
  auto* e = id == 0 ? nullptr : find(id);
  if (!e) return false;
  dropped = std::move(e->done);
  erase(e);
  return true;
}

template <class Pred>
std::vector<call_table::entry> call_table::take_if(Pred lost) {
  std::vector<std::uint64_t> ids;
  for (const auto& e : slots_)
    if (e.id != 0 && lost(e.deps)) ids.push_back(e.id);
  std::vector<entry> gone;
  for (const auto id : ids) {
    auto* e = find(id);
    gone.push_back(std::move(*e));
    erase(e);
  }
  return gone;
}

void call_table::fail_peer(node_index who, bool who_is_node,
                           const std::function<std::optional<node_index>(const object_id&)>& owner_of,
                           const status& s) {
  std::vector<entry> gone;
  {
    std::lock_guard lock(mu_);
    gone = take_if([&](const depends_on& d) {
      return d.first_hop == who || d.holder == who || (d.travels && who_is_node) ||
             (!d.target.is_nil() && owner_of(d.target) == who);
    });
  }
  for (auto& e : gone) e.done.fn(e.done.target.get(), {}, status(s));
}

void call_table::fail_all(const status& s) {
  std::vector<entry> gone;
  {
    std::lock_guard lock(mu_);
    gone = take_if([](const depends_on&) { return true; });
  }
  for (auto& e : gone) e.done.fn(e.done.target.get(), {}, status(s));
}

std::size_t call_table::outstanding() const {
  std::lock_guard lock(mu_);
  return used_;
}

}  // namespace ferry::calls
