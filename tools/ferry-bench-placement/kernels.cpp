#include "kernels.hpp"

bench_inference bench_infer(ferry::context& cx, ferry::ref<std::uint64_t> model, std::uint64_t count,
                            std::uint64_t input) {
  const std::uint64_t* w = cx.local(model, count);
  std::uint64_t h = input;
  for (std::uint64_t i = 0; i < count; ++i) h = (h ^ w[i]) * 0x100000001b3ULL;
  return bench_inference{h, cx.node(), 0};
}

std::uint64_t bench_busy(ferry::context& cx, ferry::ref<std::uint64_t> cell, std::uint64_t rounds) {
  std::uint64_t h = *cx.local(cell);
  for (std::uint64_t i = 0; i < rounds; ++i) {
    h = h * 6364136223846793005ULL + 1442695040888963407ULL;
    h ^= h >> 29;
  }
  return h;
}
