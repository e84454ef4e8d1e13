#include "ifunc/registry.hpp"

#include <dlfcn.h>

#include <cstdlib>
#include <filesystem>

#include <fmt/format.h>

#include "ifunc/library.hpp"

namespace ferry::ifunc {
namespace {

// Compiled ifuncs go to a cache directory per front end and linking mode, so
// code compiled for the open engine never meets the allow-listed one.
std::filesystem::path cache_dir(const linking& how, bool pure) {
  std::filesystem::path base;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) base = x;
  else if (const char* h = std::getenv("HOME"); h && *h) base = std::filesystem::path(h) / ".cache";
  else base = std::filesystem::temp_directory_path();
  return base / "ferry" / fmt::format("ifunc-{}{}", how.name, pure ? "-pure" : "");
}

status load_dependencies(const wire::ifunc_code& code) {
  for (const auto& lib : code.deps) {
    // RTLD_GLOBAL: the open engine resolves through the process's global scope.
    if (!::dlopen(lib.c_str(), RTLD_NOW | RTLD_GLOBAL)) {
      const char* why = ::dlerror();
      return make_error(errc::io_error,
                        fmt::format("ifunc {}: dependency {} does not load: {}", code.name, lib, why ? why : "?"));
    }
  }
  return {};
}

}  // namespace

bool entry::first_send_to(std::uint64_t peer) {
  std::lock_guard lock(mu_);
  return sent_.insert(peer).second;
}

void entry::forget_peer(std::uint64_t peer) {
  std::lock_guard lock(mu_);
  sent_.erase(peer);
}

registry& registry::instance() {
  static registry r;
  return r;
}

result<jit*> registry::engine(const linking& how, bool pure) {
  if (const auto it = engines_.find({&how, pure}); it != engines_.end()) return it->second.engine.get();
  jit_config c;
  c.runtime_symbols = how.runtime_symbols;
  c.any_process_symbol = !pure;
  c.uniform_entry = false;  // NAME_main and friends have the prototype's signatures
  c.meter = how.metered;
  c.bounds_checks = false;  // an ifunc's payload and target_args are not a call's regions (docs/security.md)
  c.first_tier = jit_tier::optimized;  // prototype libraries are built -O3: run them at native speed
  c.hot_call_threshold = 0;
  c.cache_dir = cache_dir(how, pure);
  c.trusted_signers = how.trusted_signers;
  auto e = jit::create(std::move(c));
  if (!e) return e.error();
  return (engines_[{&how, pure}].engine = std::move(*e)).get();
}

status registry::prepare(const linking& how) {
  std::lock_guard adding(add_mu_);
  auto eng = engine(how, how.all_pure);
  if (!eng) return eng.error();
  ++engines_.at({&how, how.all_pure}).held;
  return {};
}

void registry::release(const linking& how) {
  std::unique_ptr<jit> ending;
  {
    std::lock_guard adding(add_mu_);
    const auto it = engines_.find({&how, how.all_pure});
    if (it == engines_.end() || it->second.held == 0 || --it->second.held != 0) return;
    std::shared_lock lock(mu_);
    for (const auto& [k, e] : by_key_)
      if (e->linked == &how && e->pure == how.all_pure) return;  // its code is in use: the engine stays
    ending = std::move(it->second.engine);
    engines_.erase(it);
  }
  ending.reset();  // joins the engine's workers (a warm-up still compiling), outside the lock
}

std::size_t registry::engines() const {
  std::lock_guard adding(add_mu_);
  return engines_.size();
}

bool registry::warmed_up(const linking& how) const {
  std::unique_lock adding(add_mu_, std::try_to_lock);
  if (!adding.owns_lock()) return false;
  const auto it = engines_.find({&how, how.all_pure});
  return it != engines_.end() && it->second.engine->stats().warmed_up != 0;
}

result<std::shared_ptr<entry>> registry::add(scope owner, wire::ifunc_code code, const linking& how) {
  const object_id key = key_of(code);
  std::lock_guard adding(add_mu_);
  if (auto existing = find(owner, key)) return existing;
  const bool pure = code.pure || how.all_pure;
  if (!pure)
    if (auto st = load_dependencies(code); !st) return st;
  auto eng = engine(how, pure);
  if (!eng) return eng.error();
  auto fn = (*eng)->load(code.code).get();
  if (!fn) return make_error(fn.code(), fmt::format("ifunc {}: {}", code.name, fn.error().message()));
  auto e = std::make_shared<entry>();
  const ifunc_symbols s = symbols_of(code.name);
  e->main = reinterpret_cast<main_fn>(fn->lookup(s.main));
  e->payload_bound = reinterpret_cast<payload_bound_fn>(fn->lookup(s.payload_bound));
  e->payload_init = reinterpret_cast<payload_init_fn>(fn->lookup(s.payload_init));
  for (const auto& [f, sym] : {std::pair{reinterpret_cast<void*>(e->main), &s.main},
                               std::pair{reinterpret_cast<void*>(e->payload_bound), &s.payload_bound},
                               std::pair{reinterpret_cast<void*>(e->payload_init), &s.payload_init}})
    if (!f) {
      (void)(*eng)->unload(code.code.id());
      return make_error(errc::bad_format, fmt::format("ifunc library {} does not define {}", code.name, *sym));
    }
  e->key = key;
  e->owner = owner;
  e->name = code.name;
  e->pure = pure;
  e->linked = &how;
  e->code_section = wire::encode_ifunc_code(code);
  e->code = std::move(*fn);
  std::unique_lock lock(mu_);
  e->handle = next_handle_++;
  by_key_[{owner, key}] = e;
  by_handle_[e->handle] = e;
  return e;
}

std::shared_ptr<entry> registry::find(scope owner, const object_id& key) const {
  std::shared_lock lock(mu_);
  auto it = by_key_.find({owner, key});
  return it == by_key_.end() ? nullptr : it->second;
}

std::shared_ptr<entry> registry::find(scope owner, std::string_view name) const {
  std::shared_lock lock(mu_);
  for (const auto& [k, e] : by_key_)
    if (k.owner == owner && e->name == name) return e;
  return nullptr;
}

std::shared_ptr<entry> registry::find(std::uint64_t handle) const {
  std::shared_lock lock(mu_);
  auto it = by_handle_.find(handle);
  return it == by_handle_.end() ? nullptr : it->second;
}

status registry::remove(std::uint64_t handle) {
  std::shared_ptr<entry> e;
  {
    std::unique_lock lock(mu_);
    auto it = by_handle_.find(handle);
    if (it == by_handle_.end())
      return make_error(errc::not_found, fmt::format("ifunc handle {} is not registered (deregistered twice?)", handle));
    e = std::move(it->second);
    by_handle_.erase(it);
    by_key_.erase({e->owner, e->key});
  }
  unload(*e);
  return {};
}

void registry::remove_scope(scope owner) {
  std::vector<std::shared_ptr<entry>> gone;
  {
    std::unique_lock lock(mu_);
    for (auto it = by_key_.begin(); it != by_key_.end();)
      if (it->first.owner == owner) {
        by_handle_.erase(it->second->handle);
        gone.push_back(std::move(it->second));
        it = by_key_.erase(it);
      } else {
        ++it;
      }
  }
  for (const auto& e : gone) unload(*e);
}

void registry::unload(const entry& e) {
  // Several scopes may hold the same code in one engine: its copy goes with the last.
  bool still_used = false;
  {
    std::shared_lock lock(mu_);
    for (const auto& [k, other] : by_key_)
      still_used = still_used || (other->linked == e.linked && other->pure == e.pure && other->code.id() == e.code.id());
  }
  if (still_used) return;
  std::lock_guard engines(add_mu_);
  // The engine compiled this entry, and release() keeps an engine whose code is registered.
  if (const auto it = engines_.find({e.linked, e.pure}); it != engines_.end())
    (void)it->second.engine->unload(e.code.id());
}

}  // namespace ferry::ifunc
