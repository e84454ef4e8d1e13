// C++ mobile code the compile-pass tests build with ferry_add_mobile():
// namespaces, a template with two instantiations, static inline helpers, a
// constant table, self-forwarding and a mobile function calling another.
#include "graph.hpp"

namespace graph {
namespace {
constexpr std::uint32_t kPrimes[] = {2, 3, 5, 7, 11, 13};
}  // namespace

static inline std::uint64_t mix(std::uint64_t x) { return (x * 0x9e3779b97f4a7c15ULL) ^ (x >> 31); }

[[ferry::mobile]] std::uint64_t chase(ferry::context& cx, ferry::ref<std::uint64_t> table, std::uint64_t index,
                                      std::uint32_t depth) {
  const std::uint64_t* t = cx.local(table, 64);
  if (!t) return 0;
  if (depth == 0) return t[index % 64];
  return cx.forward(&chase, table, mix(t[index % 64]) % 64, depth - 1);
}

[[ferry::mobile]] edge heaviest(ferry::context& cx, ferry::ref<edge> edges, std::uint32_t n) {
  const edge* e = cx.local(edges, n);
  edge best{0, 0.0f};
  if (!e) return best;
  for (std::uint32_t i = 0; i < n; ++i)
    if (e[i].weight > best.weight) best = e[i];
  return best;
}

template <class T>
[[ferry::mobile]] T scale(ferry::context&, T value, std::uint32_t k) {
  return value * static_cast<T>(kPrimes[k % 6]);
}
template std::int32_t scale<std::int32_t>(ferry::context&, std::int32_t, std::uint32_t);
template double scale<double>(ferry::context&, double, std::uint32_t);

[[ferry::mobile]] std::uint64_t twice_chase(ferry::context& cx, ferry::ref<std::uint64_t> table,
                                            std::uint64_t index) {
  return 2 * chase(cx, table, index, 0);
}

// Continues with another mobile function: its symbol is a reference.
[[ferry::mobile]] std::uint64_t hop(ferry::context& cx, ferry::ref<std::uint64_t> table, std::uint64_t index) {
  return cx.forward(&chase, table, index, 1u);
}

}  // namespace graph
