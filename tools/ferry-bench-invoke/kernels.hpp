#pragma once

#include <cstdint>
#include <vector>

#include <ferry/ferry.hpp>

[[ferry::mobile]] std::uint64_t bench_increment(ferry::context& cx, std::uint64_t x);

/// bench_cold_k(x) = x * (2k + 3) + k, for k = 0..17: the cold first calls
/// take the first half, the preloads the second.
using bench_cold_fn = std::uint64_t (*)(ferry::context&, std::uint64_t);
const std::vector<bench_cold_fn>& bench_cold_functions();
