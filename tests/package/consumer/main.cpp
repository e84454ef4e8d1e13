// Built against an *installed* ferry: proves headers, library and CMake
// package are complete.
#include <cstdio>

#include <ferry/ferry.hpp>

// Travels as a code object (ferry_add_mobile in CMakeLists.txt).
[[ferry::mobile]] std::uint64_t twice(ferry::context&, std::uint64_t x) { return 2 * x; }

int main() {
  auto st = ferry::store::open_memory();
  auto info = st->create(16);
  if (!info) return 1;
  const ferry::ref<std::uint64_t> r{info->id, 8};
  if (!st->store_value(r, std::uint64_t{42})) return 2;
  auto v = st->load(r);
  if (!v || *v != 42) return 3;
  std::printf("consumer: object %s holds %llu\n", info->id.to_string().c_str(), static_cast<unsigned long long>(*v));
  auto code = ferry::code_registry::global().find(reinterpret_cast<const void*>(&twice));
  if (!code) {
    std::printf("consumer: %s\n", code.error().describe().c_str());
    return 4;
  }
  if ((*code)->variants.size() != 2) return 5;
  std::printf("consumer: code object %s (%s) for %s and %s\n", (*code)->id().to_string().c_str(),
              (*code)->name.c_str(), (*code)->variants[0].triple.c_str(), (*code)->variants[1].triple.c_str());
  return 0;
}
