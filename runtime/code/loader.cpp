#include "code/loader.hpp"
#include "code/traits.hpp"

#include <fmt/format.h>

namespace ferry::code {

using wire::frame;
using wire::frame_type;

namespace {

wire::invoke_body& call_of(frame& f) { return std::get<wire::invoke_body>(f.body); }

}  // namespace

code_entry* loader::resident(const object_id& id) {
  std::lock_guard lock(mu_);
  auto it = code_.find(id);
  return it != code_.end() && it->second->fn ? it->second.get() : nullptr;
}

code_entry* loader::resident_by_symbol(std::string_view symbol) {
  std::lock_guard lock(mu_);
  for (auto& [id, e] : code_)
    if (e->code.symbol == symbol && e->fn) return e.get();
  return nullptr;
}

void loader::ensure(frame&& f) {
  auto& call = call_of(f);
  code_entry* entry = call.code.is_nil() ? resident_by_symbol(call.symbol) : resident(call.code);
  if (entry) return ready_(entry, std::move(f));

  // Not resident yet. Use code pushed with the call, else pull it.
  if (!call.code_blob.empty()) {
    auto co = code_object::decode(call.code_blob);
    if (!co) return fail_(call, co.error());
    const auto id = co->id();
    if (!call.code.is_nil() && id != call.code)
      return fail_(call, make_error(errc::corrupt, fmt::format("pushed code object is {}, the call names {}",
                                                                id.to_string(), call.code.to_string())));
    call.code = id;
    call.code_blob.clear();
    auto& waiting = waiting_for_code_[id];
    waiting.push_back(std::move(f));
    if (waiting.size() == 1) load(id, std::move(*co));
    return;
  }
  const wire::node_index holder = call.code_holder != wire::kNoNode ? call.code_holder : call.origin;
  const object_id id = call.code;
  std::string symbol = call.symbol;
  auto& waiting = id.is_nil() ? waiting_for_symbol_[symbol] : waiting_for_code_[id];
  waiting.push_back(std::move(f));
  if (waiting.size() == 1) pull(id, symbol, holder);  // else a request is out already
}

namespace {
// A code request in flight: which code, for whom.
struct pull_request {
  loader* self;
  object_id code;
  std::string symbol;
  void on_answer(std::span<const std::uint8_t> blob, status&& s) { self->pulled(code, symbol, blob, std::move(s)); }
};
}  // namespace

void loader::pull(const object_id& id, const std::string& symbol, wire::node_index holder) {
  const std::uint64_t request =
      calls_.add({holder, {}, holder}, calls::completion_for(std::make_shared<pull_request>(pull_request{this, id, symbol})));
  if (auto s = member_.send(holder, {frame_type::code_request, member_.self(), request,
                                     wire::code_request_body{id, symbol}});
      !s.ok())
    calls_.complete(request, {}, s);
}

void loader::pulled(const object_id& wanted, const std::string& symbol, std::span<const std::uint8_t> blob, status s) {
  auto take_waiting = [&] {
    std::vector<frame> w;
    if (wanted.is_nil()) {
      w = std::move(waiting_for_symbol_[symbol]);
      waiting_for_symbol_.erase(symbol);
    } else {
      w = std::move(waiting_for_code_[wanted]);
      waiting_for_code_.erase(wanted);
    }
    return w;
  };
  if (!s.ok()) return fail_waiting(take_waiting(), s);
  auto co = code_object::decode(blob);
  if (!co) return fail_waiting(take_waiting(), co.error());
  const auto id = co->id();
  if (!wanted.is_nil() && id != wanted)
    return fail_waiting(take_waiting(), make_error(errc::corrupt, fmt::format("asked for code object {}, got {}",
                                                                              wanted.to_string(), id.to_string())));
  if (wanted.is_nil()) {  // calls waiting by symbol now wait by id
    auto by_symbol = take_waiting();
    for (auto& w : by_symbol) call_of(w).code = id;
    auto& dst = waiting_for_code_[id];
    const bool loading = !dst.empty();  // pushed code with this id is loading already
    std::move(by_symbol.begin(), by_symbol.end(), std::back_inserter(dst));
    if (loading || dst.empty()) return;
  }
  load(id, std::move(*co));
}

void loader::fail_waiting(std::vector<frame>&& waiting, const status& s) {
  for (auto& w : waiting) {
    const auto& c = call_of(w);
    fail_(c, make_error(s.code() == errc::peer_dead ? errc::peer_dead : errc::unknown_code,
                        fmt::format("code for {} unavailable: {}", c.symbol, s.describe())));
  }
}

void loader::load(const object_id& id, code_object code) {
  code_entry* entry;
  {
    std::lock_guard lock(mu_);
    auto& slot = code_[id];
    if (slot && !slot->fn) slot->code = std::move(code);  // an earlier copy failed to load (unsigned, say): try this one
    else if (!slot) {
      slot = std::make_unique<code_entry>();
      slot->code = std::move(code);
      slot->id = id;
      slot->may_block = code::may_block(slot->code);
      slot->may_forward = code::may_forward(slot->code);
    }
    entry = slot.get();
  }
  jit_.load(entry->code, [this, entry, id](result<jit_function> loaded) {
    member_.post([this, entry, id, loaded = std::move(loaded)]() mutable {
      auto waiting = std::move(waiting_for_code_[id]);
      waiting_for_code_.erase(id);
      if (!loaded) {
        for (auto& w : waiting) fail_(call_of(w), loaded.error());
        return;
      }
      {
        std::lock_guard lock(mu_);
        if (!entry->fn) entry->fn = std::move(*loaded);
      }
      for (auto& w : waiting) ready_(entry, std::move(w));
    });
  });
}

result<std::vector<std::uint8_t>> loader::encoded(const object_id& id, std::string_view symbol) {
  std::lock_guard lock(mu_);
  if (auto it = code_.find(id); it != code_.end()) return it->second->code.encode();
  if (!symbol.empty())
    for (auto& [cid, e] : code_)
      if (e->code.symbol == symbol) return e->code.encode();
  return make_error(errc::unknown_code, fmt::format("node {} does not hold code {} ({})", member_.self(),
                                                    id.to_string(), symbol));
}

}  // namespace ferry::code
