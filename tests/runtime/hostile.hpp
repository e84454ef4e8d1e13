// Mobile functions that misbehave, for the containment tests: each is called
// on a cell so the call runs where the cell lives.
#pragma once

#include <cstdint>
#include <vector>

#include <ferry/ferry.hpp>

namespace rt_test {

/// Writes 1 to `address` (0: a null write; far away: an unmapped page).
[[ferry::mobile]] std::uint64_t write_at(ferry::context& cx, ferry::ref<std::uint64_t> cell, std::uint64_t address);
/// Asks cx.local for `asked` words from `cell`, writes `value` to word
/// `index` through the pointer (past what it asked for when index >= asked)
/// and returns word 0.
[[ferry::mobile]] std::uint64_t write_word(ferry::context& cx, ferry::ref<std::uint64_t> cell, std::uint64_t asked,
                                           std::uint64_t index, std::uint64_t value);
/// Adds 1 to `count` words from `cell`, `stride` words apart, each through
/// a cx.local pointer of its own, and returns their new sum.
[[ferry::mobile]] std::uint64_t bump_each(ferry::context& cx, ferry::ref<std::uint64_t> cell, std::uint64_t count,
                                          std::uint64_t stride);
/// *cell / by (by = 0: SIGFPE).
[[ferry::mobile]] std::uint64_t divide(ferry::context& cx, ferry::ref<std::uint64_t> cell, std::uint64_t by);
/// __builtin_trap() when `yes`, else *cell.
[[ferry::mobile]] std::uint64_t trap_if(ferry::context& cx, ferry::ref<std::uint64_t> cell, std::uint64_t yes);
/// Recursion `limit` deep with a 512-byte frame each (a huge limit: stack overflow).
[[ferry::mobile]] std::uint64_t recurse(ferry::context& cx, ferry::ref<std::uint64_t> cell, std::uint64_t limit);
/// A 1 GiB local array.
[[ferry::mobile]] std::uint64_t huge_frame(ferry::context& cx, ferry::ref<std::uint64_t> cell, std::uint64_t index);
/// *cell + a helper's result: the helper writes `bytes` bytes into its
/// 16-byte local array (more than 16: past its end, over the frame's canary,
/// saved frame pointer and return address).
[[ferry::mobile]] std::uint64_t overrun_local(ferry::context& cx, ferry::ref<std::uint64_t> cell, std::uint64_t bytes);
/// The same, but the bytes are written through the array's address read
/// back from memory: a pointer into the stack, not known to be the array.
[[ferry::mobile]] std::uint64_t overrun_through(ferry::context& cx, ferry::ref<std::uint64_t> cell, std::uint64_t bytes);
/// Increments *cell for ever.
[[ferry::mobile]] std::uint64_t loop_forever(ferry::context& cx, ferry::ref<std::uint64_t> cell);
/// Calls itself twice per level, `depth` levels deep, with no loop: 2^depth
/// calls (only per-call fuel can stop depth 60).
[[ferry::mobile]] std::uint64_t fan_out(ferry::context& cx, ferry::ref<std::uint64_t> cell, std::uint64_t depth);

/// Bounds checks (docs/security.md): the address of *cell as its node maps
/// it, to forge pointers from.
[[ferry::mobile]] std::uint64_t address_of(ferry::context& cx, ferry::ref<std::uint64_t> cell);
/// The address of a cx.fetch copy of *cell: node heap, freed when the call ends.
[[ferry::mobile]] std::uint64_t fetched_address(ferry::context& cx, ferry::ref<std::uint64_t> cell);
/// The word at `address` + *cell.
[[ferry::mobile]] std::uint64_t read_at(ferry::context& cx, ferry::ref<std::uint64_t> cell, std::uint64_t address);
/// Writes 1 through the call's own context pointer (the runtime's state
/// of the call, on the stack above the mobile code's frames).
[[ferry::mobile]] std::uint64_t write_context(ferry::context& cx, ferry::ref<std::uint64_t> cell);
/// Control-flow integrity: *cell passed to a function through a pointer —
/// to this code object's own helper (twice: 2 * *cell) when `target` is 0,
/// to the constant address 0x1000 when it is 1, else to whatever address
/// `target` holds.
[[ferry::mobile]] std::uint64_t call_through(ferry::context& cx, ferry::ref<std::uint64_t> cell, std::uint64_t target);
/// The address of a helper of this code object (thrice: 3 * its argument),
/// as its node maps it: another code object's function for call_through.
[[ferry::mobile]] std::uint64_t function_address(ferry::context& cx, ferry::ref<std::uint64_t> cell);
/// Correct code that touches memory every way checks must admit, over
/// `table` (2n words: a permutation of 0..n-1, then n words of scratch):
/// memcpy within the object, a stack array indexed at run time, a pointer
/// chase, an adjacency-style double indirection, a copy into a result
/// struct. reference_work() computes the same on the host.
[[ferry::mobile]] std::uint64_t memory_work(ferry::context& cx, ferry::ref<std::uint64_t> table, std::uint64_t n);
std::uint64_t reference_work(std::vector<std::uint64_t> table, std::uint64_t n);

}  // namespace rt_test
