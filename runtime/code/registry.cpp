#include <ferry/code_registry.hpp>

#include <fmt/format.h>

#include "core/last_answer.hpp"

namespace ferry {

code_registry::code_registry() : serial_(core::next_table_serial()) {}

code_registry& code_registry::global() {
  static code_registry r;
  return r;
}

status code_registry::add(code_object co) {
  const auto id = co.id();
  std::unique_lock lock(mu_);
  if (by_id_.contains(id)) return {};
  if (auto it = by_symbol_.find(co.symbol); it != by_symbol_.end())
    return make_error(errc::already_exists,
                      fmt::format("two different code objects for {} ({}): {} and {}; one program must carry one "
                                  "version of each mobile function",
                                  co.name, co.symbol, it->second->id().to_string(), id.to_string()));
  const auto& stored = objects_.emplace_back(std::move(co));
  by_symbol_.emplace(stored.symbol, &stored);
  by_id_.emplace(id, &stored);
  id_of_.emplace(&stored, id);
  generation_.fetch_add(1, std::memory_order_release);
  return {};
}

object_id code_registry::id_of(const code_object& co) const {
  // An object's id never changes and objects are never removed: the last
  // answer stays true whatever is registered after it.
  thread_local core::last_answer<const code_object*, object_id> last;
  if (const auto* id = last.find(serial_, 0, &co)) return *id;
  {
    std::shared_lock lock(mu_);
    if (auto it = id_of_.find(&co); it != id_of_.end()) {
      last.keep(serial_, 0, &co, it->second);
      return it->second;
    }
  }
  return co.id();
}

status code_registry::add_section(std::span<const std::uint8_t> bytes) {
  status first;
  for (auto& rec : decode_code_section_records(bytes)) {
    status s;
    if (rec.object) {
      s = add(std::move(*rec.object));
    } else {
      s = rec.object.error();
      // Only the function this record names becomes unavailable, with the reason.
      if (!rec.label.symbol.empty()) {
        std::unique_lock lock(mu_);
        generation_.fetch_add(1, std::memory_order_release);
        damaged_.try_emplace(rec.label.symbol,
                             make_error(s.code(), fmt::format("the code object of mobile function {} in this program "
                                                              "is damaged: {}",
                                                              rec.label.name, s.message())));
      }
    }
    if (!s && first.ok()) first = std::move(s);
  }
  return first;
}

void code_registry::map_address(const void* fn, std::string_view symbol) {
  std::unique_lock lock(mu_);
  symbol_of_.insert_or_assign(fn, std::string(symbol));
  generation_.fetch_add(1, std::memory_order_release);
}

status code_registry::unknown(std::string what) const {
  std::string msg = std::move(what);
  if (!load_status_.ok()) msg += fmt::format(" (registering this program's code objects failed: {})", load_status_.describe());
  return make_error(errc::unknown_code, std::move(msg));
}

result<const code_object*> code_registry::find(const void* host_fn) const {
  thread_local core::last_answer<const void*, const code_object*> last;
  const auto generation = generation_.load(std::memory_order_acquire);
  if (const auto* co = last.find(serial_, generation, host_fn)) return *co;
  std::shared_lock lock(mu_);
  const auto it = symbol_of_.find(host_fn);
  if (it == symbol_of_.end())
    return unknown(fmt::format("function at {} has no code object: is it [[ferry::mobile]], and was its target "
                               "compiled with ferry_add_mobile()?",
                               host_fn));
  const auto co = by_symbol_.find(it->second);
  if (co == by_symbol_.end()) {
    if (auto d = damaged_.find(it->second); d != damaged_.end()) return d->second;
    return unknown(fmt::format("mobile function {} has no code object: was it compiled with ferry_add_mobile()?",
                               it->second));
  }
  last.keep(serial_, generation, host_fn, co->second);
  return co->second;
}

result<const code_object*> code_registry::find_symbol(std::string_view symbol) const {
  std::shared_lock lock(mu_);
  const auto it = by_symbol_.find(symbol);
  if (it == by_symbol_.end()) {
    if (auto d = damaged_.find(symbol); d != damaged_.end()) return d->second;
    return unknown(fmt::format("no code object for symbol {}: was it compiled with ferry_add_mobile()?", symbol));
  }
  return it->second;
}

result<const code_object*> code_registry::find_id(const object_id& id) const {
  std::shared_lock lock(mu_);
  const auto it = by_id_.find(id);
  if (it == by_id_.end()) return unknown(fmt::format("no code object with id {}", id.to_string()));
  return it->second;
}

std::vector<const code_object*> code_registry::list() const {
  std::shared_lock lock(mu_);
  std::vector<const code_object*> out;
  out.reserve(objects_.size());
  for (const auto& co : objects_) out.push_back(&co);
  return out;
}

status code_registry::load_status() const {
  std::shared_lock lock(mu_);
  return load_status_;
}

void code_registry::note_load_error(status s) {
  std::unique_lock lock(mu_);
  if (load_status_.ok()) load_status_ = std::move(s);
}

}  // namespace ferry

extern "C" void ferry_register_code(const unsigned char* code_begin, const unsigned char* code_end,
                                    const ferry_fn_index_record* index_begin,
                                    const ferry_fn_index_record* index_end) {
  auto& reg = ferry::code_registry::global();
  if (code_begin && code_end > code_begin) {
    if (auto s = reg.add_section({code_begin, static_cast<std::size_t>(code_end - code_begin)}); !s)
      reg.note_load_error(std::move(s));
  }
  for (auto* r = index_begin; r && r < index_end; ++r)
    if (r->fn && r->symbol) reg.map_address(r->fn, r->symbol);
}
