// Built against an *installed* ferry: proves headers, library and CMake
// package are complete.
#include <cstdio>

#include <ferry/store.hpp>

int main() {
  auto st = ferry::store::open_memory();
  auto info = st->create(16);
  if (!info) return 1;
  const ferry::ref<std::uint64_t> r{info->id, 8};
  if (!st->store_value(r, std::uint64_t{42})) return 2;
  auto v = st->load(r);
  if (!v || *v != 42) return 3;
  std::printf("consumer: object %s holds %llu\n", info->id.to_string().c_str(), static_cast<unsigned long long>(*v));
  return 0;
}
