// Mobile functions of `ferry bench placement`: inference over a model
// partition (only reads it, so placement may run it on a pulled copy) and
// work that keeps a node's executors busy.
#pragma once

#include <cstdint>

#include <ferry/ferry.hpp>

struct bench_inference {
  std::uint64_t value = 0;
  std::uint32_t node = 0;  ///< where it ran (cx.node())
  std::uint32_t pad = 0;
};

/// A mix of the `count` words of `model` with `input`.
[[ferry::mobile]] bench_inference bench_infer(ferry::context& cx, ferry::ref<std::uint64_t> model, std::uint64_t count,
                                              std::uint64_t input);
/// `rounds` rounds of arithmetic seeded by *cell (0 rounds: *cell).
[[ferry::mobile]] std::uint64_t bench_busy(ferry::context& cx, ferry::ref<std::uint64_t> cell, std::uint64_t rounds);
