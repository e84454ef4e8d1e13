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
// through a charged function. With bounds checks on, every load, store,
// atomic, memory intrinsic and pointer argument of an allowed libc call is
// compared with a region cached in registers and, when outside it, passed to
// `ferry_bounds` (<ferry/ferry.h>), which finds the region of the running
// call that holds it (the call's stack, this module's globals, the memory
// the runtime handed to the call) or ends the call with errc::memory_fault;
// a write (a store, an atomic, the destination of a copy or fill) is
// cached apart and passed to `ferry_bounds_write`, which admits only what
// the call may write (not what cx.view or cx.fetch handed it)
// — but an access computed from a fixed-size local or a global of the
// module is compared with that object alone, and outside it calls
// `ferry_bounds_object`, which ends the call;
// every call through a pointer is compared with the module's address-taken
// functions and, when it holds none of them, goes to `ferry_bad_callee`,
// which ends the call with errc::memory_fault before the jump; and every
// function with arrays or address-taken locals gets a stack canary (read
// from kStackGuardSymbol, ferry's own guard; stack_guard_address()): one
// whose canary changed calls `__stack_chk_fail`, linked to
// ferry_stack_smashed, which ends the call with errc::memory_fault before
// it returns.
// docs/security.md has the design and the measured cost.
#pragma once

#include <cstdint>
#include <string>

#include <llvm/IR/Intrinsics.h>

namespace llvm {
class Module;
}

namespace ferry::jitd {

/// The names contained code reads its stack canaries' guard from and calls
/// when a canary changed; the engine links them (stack_guard_address(),
/// ferry_stack_smashed). Mobile code may not name the guard itself.
inline constexpr const char* kStackGuardSymbol = "__stack_chk_guard";
inline constexpr const char* kStackSmashedSymbol = "__stack_chk_fail";

/// The guard: one random word per process (its lowest byte zero, so that a
/// string overrun stops at it), made on first use.
void* stack_guard_address();

/// Loop iterations charged per ferry_fuel call (a power of two).
inline constexpr std::uint64_t kFuelBlock = 1u << 14;

/// What contain_module adds besides stack probes.
struct contain_options {
  bool meter = true;         ///< fuel accounting (jit_config::meter)
  bool bounds = true;        ///< bounds checks (jit_config::bounds_checks)
  /// How each bounds check is written: true, an inline compare with the
  /// regions last used (cached in registers) before the call to
  /// `ferry_bounds`, for code that runs long (the optimized tier); false,
  /// a call to `ferry_bounds` at every access, which is slower to run but
  /// several times less code to generate (the fast tier: a first call's
  /// compile is on its caller's path). Both check every access.
  bool inline_checks = true;
  std::string entry_symbol;  ///< the uniform entry: it marks the top of the call's stack region
};

/// Add stack probes to every function `m` defines, with `o.meter` fuel
/// accounting and with `o.bounds` bounds checks. Run after the policy check
/// (mobile code cannot name the hooks itself to dodge them: ferry_fuel only
/// burns more fuel, ferry_bounds only checks more) and after the IR
/// optimizer, so loops the optimizer removed cost nothing. Returns the
/// number of checks inserted: accesses (those constant offsets keep inside
/// an alloca or global of the module are left unchecked) and calls through
/// pointers.
std::uint64_t contain_module(llvm::Module& m, const contain_options& o);

/// Whether bounds checks cover the memory intrinsic `id` touches: memcpy,
/// memmove, memset and their inline forms, the masked loads, stores,
/// gathers and scatters, va_start and va_copy. The policy admits these
/// under bounds checks and refuses other intrinsics that touch memory
/// (compile.cpp); contain_module checks them from the same list.
bool checks_intrinsic(llvm::Intrinsic::ID id);

}  // namespace ferry::jitd
