// Built against an *installed* ferry, by clang 19 or by GCC: proves headers,
// library and CMake package are complete, and that `&fn` finds the code
// object of each kind of mobile function (C++ external, C, template).
#include <cstdio>
#include <cstring>

#include <ferry/ferry.hpp>

#include "scale.h"

// Travel as code objects (ferry_add_mobile in CMakeLists.txt).
[[ferry::mobile]] std::uint64_t twice(ferry::context&, std::uint64_t x) { return 2 * x; }

namespace consumer {
template <class T>
[[ferry::mobile]] T add(ferry::context&, T a, T b) {
  return a + b;
}
}  // namespace consumer

namespace {

// The code object registered for `fn` must be the one named `name`, with
// both triples' variants.
bool check(const void* fn, const char* name, const char* symbol) {
  auto code = ferry::code_registry::global().find(fn);
  if (!code) {
    std::printf("consumer: %s: %s\n", name, code.error().describe().c_str());
    return false;
  }
  const ferry::code_object& co = **code;
  if (co.name != name || co.symbol != symbol || co.variants.size() != 2) {
    std::printf("consumer: &%s found %s (%s) with %zu variants\n", name, co.name.c_str(), co.symbol.c_str(),
                co.variants.size());
    return false;
  }
  std::printf("consumer: &%s -> code object %s (%s) for %s and %s\n", name, co.id().to_string().c_str(),
              co.symbol.c_str(), co.variants[0].triple.c_str(), co.variants[1].triple.c_str());
  return true;
}

}  // namespace

int main() {
  auto st = ferry::store::open_memory();
  auto info = st->create(16);
  if (!info) return 1;
  const ferry::ref<std::uint64_t> r{info->id, 8};
  if (!st->store_value(r, std::uint64_t{42})) return 2;
  auto v = st->load(r);
  if (!v || *v != 42) return 3;
  std::printf("consumer: object %s holds %llu\n", info->id.to_string().c_str(), static_cast<unsigned long long>(*v));

  if (auto s = ferry::code_registry::global().load_status(); !s.ok()) {
    std::printf("consumer: %s\n", s.describe().c_str());
    return 4;
  }
  if (!check(reinterpret_cast<const void*>(&twice), "twice", "_Z5twiceRN5ferry7contextEm")) return 5;
  if (!check(reinterpret_cast<const void*>(&scale), "scale", "scale")) return 6;
  if (!check(reinterpret_cast<const void*>(&consumer::add<std::uint32_t>), "consumer::add<unsigned int>",
             "_ZN8consumer3addIjEET_RN5ferry7contextES1_S1_"))
    return 7;
  // A function that is not mobile has no code object.
  if (ferry::code_registry::global().find(reinterpret_cast<const void*>(&check)).code() != ferry::errc::unknown_code)
    return 8;
  return 0;
}
