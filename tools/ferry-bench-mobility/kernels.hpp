// Mobile functions of `ferry bench mobility`.
#pragma once

#include <cstdint>

#include <ferry/ferry.hpp>

/// A list element; the list runs through objects on several nodes.
struct bench_list_node {
  std::uint64_t value = 0;
  ferry::ptr<bench_list_node> next;
};

/// One step of a walk driven by the caller: an element's value and where the
/// next one is (nil at the end).
struct bench_step {
  std::uint64_t value = 0;
  ferry::ref<bench_list_node> next;
};

/// Point `from`'s next at `to` (null when `to` is nil).
[[ferry::mobile]] void bench_link(ferry::context& cx, ferry::ref<bench_list_node> from,
                                  ferry::ref<bench_list_node> to);
/// The whole walk as one call that forwards itself: acc + every value from `at`.
[[ferry::mobile]] std::uint64_t bench_list_sum(ferry::context& cx, ferry::ref<bench_list_node> at, std::uint64_t acc);
/// The RPC way: one call per element.
[[ferry::mobile]] bench_step bench_list_step(ferry::context& cx, ferry::ref<bench_list_node> at);
/// *cell.
[[ferry::mobile]] std::uint64_t bench_read(ferry::context& cx, ferry::ref<std::uint64_t> cell);
