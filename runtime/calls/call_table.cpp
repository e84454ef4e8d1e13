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
  // Zero means "no call" on the wire; keep well away from wrapping into it.
  return (v >> 1) | 1;
}
}  // namespace

call_table::call_table() : next_(random_start()) {}

std::uint64_t call_table::add(depends_on deps, completion done) {
  std::lock_guard lock(mu_);
  const std::uint64_t id = next_++;
  entries_.emplace(id, entry{deps, std::move(done)});
  return id;
}

void call_table::set_first_hop(std::uint64_t id, node_index hop) {
  std::lock_guard lock(mu_);
  if (auto it = entries_.find(id); it != entries_.end()) it->second.deps.first_hop = hop;
}

bool call_table::complete(std::uint64_t id, std::vector<std::uint8_t>&& bytes, status s) {
  completion done;
  {
    std::lock_guard lock(mu_);
    auto it = entries_.find(id);
    if (it == entries_.end()) {
      late_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    done = std::move(it->second.done);
    entries_.erase(it);
  }
  done(std::move(bytes), std::move(s));
  return true;
}

bool call_table::cancel(std::uint64_t id) {
  completion dropped;  // destroyed outside the lock
  std::lock_guard lock(mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return false;
  dropped = std::move(it->second.done);
  entries_.erase(it);
  return true;
}

void call_table::finish(std::vector<entry>& gone, const status& s) {
  for (auto& e : gone) e.done({}, s);
}

void call_table::fail_peer(node_index who, bool who_is_node,
                           const std::function<std::optional<node_index>(const object_id&)>& owner_of,
                           const status& s) {
  std::vector<entry> gone;
  {
    std::lock_guard lock(mu_);
    for (auto it = entries_.begin(); it != entries_.end();) {
      const auto& d = it->second.deps;
      const bool lost = d.first_hop == who || d.holder == who || (d.travels && who_is_node) ||
                        (!d.target.is_nil() && owner_of(d.target) == who);
      if (lost) {
        gone.push_back(std::move(it->second));
        it = entries_.erase(it);
      } else {
        ++it;
      }
    }
  }
  finish(gone, s);
}

void call_table::fail_all(const status& s) {
  std::vector<entry> gone;
  {
    std::lock_guard lock(mu_);
    for (auto& [id, e] : entries_) gone.push_back(std::move(e));
    entries_.clear();
  }
  finish(gone, s);
}

std::size_t call_table::outstanding() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

}  // namespace ferry::calls
