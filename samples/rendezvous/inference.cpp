#include "inference.hpp"

#include <numeric>
#include <span>

namespace rendezvous_case {

std::uint64_t infer_expected(const std::uint64_t* model, std::uint64_t count, std::uint64_t input) {
  std::uint64_t h = input ^ 0x9e3779b97f4a7c15ULL;
  for (std::uint64_t i = 0; i < count; ++i) h = (h ^ model[i]) * 0x100000001b3ULL + i;
  return h;
}

inference infer(ferry::context& cx, ferry::ref<std::uint64_t> model, std::uint64_t count, std::uint64_t input) {
  const std::uint64_t* w = cx.view(model, count);
  return inference{infer_expected(w, count, input), cx.node(), 0};
}

std::uint64_t busy(ferry::context& cx, ferry::ref<std::uint64_t> cell, std::uint64_t rounds) {
  std::uint64_t h = *cx.view(cell);
  for (std::uint64_t i = 0; i < rounds; ++i) {
    h = h * 6364136223846793005ULL + 1442695040888963407ULL;
    h ^= h >> 29;  // not affine: no closed form for the optimizer to find
  }
  return h;
}

std::pair<ferry::ref<std::uint64_t>, std::vector<std::uint64_t>> make_model(ferry::runtime& rt, std::uint64_t words,
                                                                            std::uint32_t node) {
  std::vector<std::uint64_t> w(words);
  std::iota(w.begin(), w.end(), std::uint64_t{7});
  for (auto& x : w) x = x * 0x2545F4914F6CDD1DULL;
  auto model = rt.objects().create<std::uint64_t>(words, ferry::on_node(node));
  rt.objects().put(model, std::span<const std::uint64_t>(w));
  return {model, std::move(w)};
}

std::vector<std::string> node_options(std::uint32_t node, bool pin, bool bob_queued) {
  std::vector<std::string> a;
  if (pin) a = {"--cores", node == 0 ? "0" : "1"};
  if (bob_queued && node == 0) a.insert(a.end(), {"--inline-budget-us", "0"});
  return a;
}

bool wait_for_queue(ferry::runtime& rt, std::uint32_t node, std::uint32_t queued, std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto l = rt.nodes().at(node).load;
    if (l.queued >= queued && l.calls >= 12) return true;
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace rendezvous_case
