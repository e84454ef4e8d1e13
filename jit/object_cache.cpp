#include "object_cache.hpp"

#include <cstdlib>
#include <cstring>

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <llvm/Config/llvm-config.h>

#include "codegen_sources_hash.hpp"  // generated (jit/CMakeLists.txt)
#include "core/posix_io.hpp"

namespace ferry::jitd {
namespace {

constexpr char kMagic[8] = {'F', 'R', 'Y', 'J', 'I', 'T', 'O', '1'};
constexpr std::size_t kHeader = sizeof kMagic + 32;

void hash_into(crypto_generichash_state& st, std::string_view s) {
  const std::uint64_t n = s.size();  // length-prefixed: fields cannot run into each other
  crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(&n), sizeof n);
  crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(s.data()), s.size());
}

std::array<std::uint8_t, 32> digest(const char* p, std::size_t n) {
  std::array<std::uint8_t, 32> h{};
  crypto_generichash(h.data(), h.size(), reinterpret_cast<const unsigned char*>(p), n, nullptr, 0);
  return h;
}

bool write_all(int fd, const char* p, std::size_t n) { return core::write_all(fd, core::bytes_of(p, n)).ok(); }

}  // namespace

cache_key make_cache_key(const code_variant& v, const jit_target& node, jit_tier tier, bool metered, bool checked) {
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, 32);
  // v2: every object is contained (stack probes); metered ones call ferry_fuel.
  // v3: bounds-checked ones carry stack canaries (__stack_chk_fail).
  // v4: ... and check byval copies, va_start and va_copy; the policy refuses
  // more under bounds checks (compile.cpp), which a cached v3 object skipped.
  // v5: ... and compare every call through a pointer with the module's
  // address-taken functions (ferry_bad_callee).
  // v6: the fast tier's bounds checks are calls to ferry_bounds, not inline
  // compares (contain_options::inline_checks).
  // v7: the canaries are contain_module's own, read from ferry's guard
  // (__stack_chk_guard on every target), not LLVM's sspstrong; the fast
  // tier scalarizes vector code (compile.cpp).
  // v8: the optimized tier checks the strided accesses of the loops LLVM's
  // unroller leaves once, before the loop, and compares an access into a
  // local array or a global with that object (ferry_bounds as its miss).
  // v9: ... and at both tiers an access computed from a local or a global
  // of the module that leaves it ends the call (ferry_bounds_object).
  // v10: writes are checked apart from reads (ferry_bounds_write: what
  // cx.view and cx.fetch hand out admits no write).
  hash_into(st, "ferry-jit-object-v10");
  // ... and the sources that decide the machine code (compile.cpp,
  // contain.cpp, target.cpp), hashed at build time: a change there needs no
  // bump above to keep a node from linking what an earlier build compiled.
  hash_into(st, FERRY_JIT_CODEGEN_SOURCES_HASH);
  hash_into(st, metered ? "metered" : "unmetered");
  hash_into(st, checked ? "bounds-checked" : "unchecked");
  hash_into(st, std::string_view(reinterpret_cast<const char*>(v.bitcode_hash.data()), v.bitcode_hash.size()));
  for (const auto* s : {&v.triple, &v.cpu, &v.features, &node.triple, &node.cpu, &node.features}) hash_into(st, *s);
  hash_into(st, tier == jit_tier::optimized ? "O2" : "O0");
  hash_into(st, LLVM_VERSION_STRING);
  cache_key k{};
  crypto_generichash_final(&st, k.data(), k.size());
  return k;
}

std::string to_hex(const cache_key& k) {
  std::string s;
  s.reserve(64);
  for (auto b : k) s += fmt::format("{:02x}", b);
  return s;
}

std::filesystem::path default_cache_dir() {
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::filesystem::path(x) / "ferry" / "jit";
  if (const char* h = std::getenv("HOME"); h && *h) return std::filesystem::path(h) / ".cache" / "ferry" / "jit";
  return std::filesystem::current_path() / ".ferry-jit-cache";
}

object_cache::object_cache(std::filesystem::path dir, std::size_t memory_budget)
    : dir_(std::move(dir)), budget_(memory_budget) {}

object_bytes object_cache::find_in_memory(const cache_key& k) const {
  std::lock_guard lock(mu_);
  const auto it = memory_.find(to_hex(k));
  return it == memory_.end() ? nullptr : it->second;
}

object_bytes object_cache::find_on_disk(const cache_key& k) {
  if (dir_.empty()) return nullptr;
  const int fd = ::open((dir_ / (to_hex(k) + ".o")).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return nullptr;
  struct stat sb {};
  std::vector<char> buf;
  if (::fstat(fd, &sb) == 0 && static_cast<std::size_t>(sb.st_size) > kHeader) {
    buf.resize(static_cast<std::size_t>(sb.st_size));
    if (!core::read_exact(fd, core::bytes_of(buf.data(), buf.size())).ok()) buf.clear();
  }
  ::close(fd);
  if (buf.size() <= kHeader || std::memcmp(buf.data(), kMagic, sizeof kMagic) != 0) return nullptr;
  const auto h = digest(buf.data() + kHeader, buf.size() - kHeader);
  if (std::memcmp(h.data(), buf.data() + sizeof kMagic, h.size()) != 0) return nullptr;
  auto obj = std::make_shared<const std::vector<char>>(buf.begin() + kHeader, buf.end());
  remember(k, obj);
  return obj;
}

void object_cache::store(const cache_key& k, const object_bytes& obj) {
  remember(k, obj);
  if (dir_.empty()) return;
  std::lock_guard lock(mu_);
  unwritten_.emplace_back(k, obj);
}

void object_cache::write_pending() {
  std::vector<std::pair<cache_key, object_bytes>> writes;
  {
    std::lock_guard lock(mu_);
    writes.swap(unwritten_);
  }
  for (const auto& [k, obj] : writes) write_to_disk(k, obj);
}

void object_cache::write_to_disk(const cache_key& k, const object_bytes& obj) const {
  // Best effort: a node without a writable cache still works, it only
  // compiles again after a restart.
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  const auto final_path = dir_ / (to_hex(k) + ".o");
  std::string tmp = (dir_ / (to_hex(k) + ".tmp.XXXXXX")).string();
  const int fd = ::mkstemp(tmp.data());
  if (fd < 0) return;
  const auto h = digest(obj->data(), obj->size());
  const bool ok = write_all(fd, kMagic, sizeof kMagic) &&
                  write_all(fd, reinterpret_cast<const char*>(h.data()), h.size()) &&
                  write_all(fd, obj->data(), obj->size());
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), final_path.c_str()) != 0) ::unlink(tmp.c_str());
}

void object_cache::remember(const cache_key& k, const object_bytes& obj) {
  std::lock_guard lock(mu_);
  auto [it, fresh] = memory_.try_emplace(to_hex(k), obj);
  if (!fresh) return;
  order_.push_back(it->first);
  bytes_ += obj->size();
  while (bytes_ > budget_ && order_.size() > 1) {
    const auto old = memory_.find(order_.front());
    bytes_ -= old->second->size();
    memory_.erase(old);
    order_.pop_front();
  }
}

}  // namespace ferry::jitd
