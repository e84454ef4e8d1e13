// jit/contain.hpp — what the receiving node adds to mobile code before
// code generation, whatever its sender did: stack probes (a frame larger
// than a page touches each page in turn, so running past the stack always
// meets the thread's guard page and becomes errc::stack_overflow instead of
// a write somewhere below it) and, when metering is on, fuel accounting:
// every function that calls code (a defined function, or through a pointer)
// charges 1 unit at entry and every loop 1 unit per iteration, in blocks of
// kFuelBlock, through `ferry_fuel` (<ferry/ferry.h>), which ends the call
// when its fuel or its deadline runs out. Leaf functions without loops run
// uncharged: each runs a bounded time, and every call-graph cycle passes
// through a charged function.
// docs/security.md has the design and the measured cost.
#pragma once

#include <cstdint>

namespace llvm {
class Module;
}

namespace ferry::jitd {

/// Loop iterations charged per ferry_fuel call (a power of two).
inline constexpr std::uint64_t kFuelBlock = 1u << 14;

/// Add stack probes to every function `m` defines and, with `meter`, fuel
/// accounting. Run after the policy check (mobile code cannot name the
/// hook itself to dodge it: it only burns more fuel) and after the IR
/// optimizer, so loops the optimizer removed cost nothing.
void contain_module(llvm::Module& m, bool meter);

}  // namespace ferry::jitd
