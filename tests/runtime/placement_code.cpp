#include "placement_code.hpp"

namespace rt_test {

std::uint64_t infer_expected(const std::uint64_t* model, std::uint64_t count, std::uint64_t input) {
  std::uint64_t h = input ^ 0x9e3779b97f4a7c15ULL;
  for (std::uint64_t i = 0; i < count; ++i) h = (h ^ model[i]) * 0x100000001b3ULL + i;
  return h;
}

inference infer(ferry::context& cx, ferry::ref<std::uint64_t> model, std::uint64_t count, std::uint64_t input) {
  const std::uint64_t* w = cx.local(model, count);
  std::uint64_t h = input ^ 0x9e3779b97f4a7c15ULL;  // the same mix as infer_expected (no calls out of the file)
  for (std::uint64_t i = 0; i < count; ++i) h = (h ^ w[i]) * 0x100000001b3ULL + i;
  return inference{h, cx.node(), 0};
}

std::uint64_t busy(ferry::context& cx, ferry::ref<std::uint64_t> cell, std::uint64_t rounds) {
  std::uint64_t h = *cx.local(cell);
  for (std::uint64_t i = 0; i < rounds; ++i) {
    h = h * 6364136223846793005ULL + 1442695040888963407ULL;
    h ^= h >> 29;  // not affine: no closed form for the optimizer to find
  }
  return h;
}

}  // namespace rt_test
