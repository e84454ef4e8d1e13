// The mobile functions `ferry bench invoke` calls: one small function for the
// warm and pipelined cases, and distinct small functions so that each cold
// call really ships, JIT-compiles and runs code the node has never seen (and
// each preload really ships and compiles).
#include "kernels.hpp"

[[ferry::mobile]] std::uint64_t bench_increment(ferry::context&, std::uint64_t x) { return x + 1; }

#define FERRY_BENCH_COLD(k) \
  [[ferry::mobile]] std::uint64_t bench_cold_##k(ferry::context&, std::uint64_t x) { return x * (2 * k + 3) + k; }
FERRY_BENCH_COLD(0)
FERRY_BENCH_COLD(1)
FERRY_BENCH_COLD(2)
FERRY_BENCH_COLD(3)
FERRY_BENCH_COLD(4)
FERRY_BENCH_COLD(5)
FERRY_BENCH_COLD(6)
FERRY_BENCH_COLD(7)
FERRY_BENCH_COLD(8)
FERRY_BENCH_COLD(9)
FERRY_BENCH_COLD(10)
FERRY_BENCH_COLD(11)
FERRY_BENCH_COLD(12)
FERRY_BENCH_COLD(13)
FERRY_BENCH_COLD(14)
FERRY_BENCH_COLD(15)
FERRY_BENCH_COLD(16)
FERRY_BENCH_COLD(17)
#undef FERRY_BENCH_COLD

const std::vector<bench_cold_fn>& bench_cold_functions() {
  static const std::vector<bench_cold_fn> fns{
      &bench_cold_0,  &bench_cold_1,  &bench_cold_2,  &bench_cold_3,  &bench_cold_4,  &bench_cold_5,
      &bench_cold_6,  &bench_cold_7,  &bench_cold_8,  &bench_cold_9,  &bench_cold_10, &bench_cold_11,
      &bench_cold_12, &bench_cold_13, &bench_cold_14, &bench_cold_15, &bench_cold_16, &bench_cold_17};
  return fns;
}
