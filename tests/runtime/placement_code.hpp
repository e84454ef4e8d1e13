// Mobile functions of the placement tests and `ferry bench placement`: the
// seed's Alice/Bob/Carol/Dave case — inference over a model partition that
// lives on one node — and work that keeps a node's executors busy.
#pragma once

#include <cstdint>

#include <ferry/ferry.hpp>

namespace rt_test {

/// An answer and where it was computed.
struct inference {
  std::uint64_t value = 0;
  std::uint32_t node = 0;  ///< cx.node() where the function ran
  std::uint32_t pad = 0;
};

/// "Inference": a deterministic mix of the `count` words of `model` with
/// `input`; it only reads the model, so it may run on a pulled copy.
[[ferry::mobile]] inference infer(ferry::context& cx, ferry::ref<std::uint64_t> model, std::uint64_t count,
                                  std::uint64_t input);
/// The same, computed by the caller on its own copy of the words.
std::uint64_t infer_expected(const std::uint64_t* model, std::uint64_t count, std::uint64_t input);

/// `rounds` rounds of arithmetic where `cell` lives (keeps an executor busy);
/// returns the mix.
[[ferry::mobile]] std::uint64_t busy(ferry::context& cx, ferry::ref<std::uint64_t> cell, std::uint64_t rounds);

}  // namespace rt_test
