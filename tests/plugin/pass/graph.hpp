#pragma once

#include <cstdint>

#include <ferry/ferry.hpp>

namespace graph {

struct edge {
  std::uint32_t to;
  float weight;
};

[[ferry::mobile]] std::uint64_t chase(ferry::context& cx, ferry::ref<std::uint64_t> table, std::uint64_t index,
                                      std::uint32_t depth);
[[ferry::mobile]] edge heaviest(ferry::context& cx, ferry::ref<edge> edges, std::uint32_t n);
template <class T>
[[ferry::mobile]] T scale(ferry::context& cx, T value, std::uint32_t k);
extern template std::int32_t scale<std::int32_t>(ferry::context&, std::int32_t, std::uint32_t);
extern template double scale<double>(ferry::context&, double, std::uint32_t);
[[ferry::mobile]] std::uint64_t twice_chase(ferry::context& cx, ferry::ref<std::uint64_t> table,
                                            std::uint64_t index);
[[ferry::mobile]] std::uint64_t hop(ferry::context& cx, ferry::ref<std::uint64_t> table, std::uint64_t index);

}  // namespace graph
