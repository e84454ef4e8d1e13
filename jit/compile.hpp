// jit/compile.hpp — bitcode -> checked module -> object file. The same
// function runs in the node (trusted peers) and in the ferry-jit-check
// helper process (untrusted peers), so both enforce one policy.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <llvm/ADT/StringSet.h>
#include <llvm/Support/Error.h>
#include <llvm/Support/MemoryBuffer.h>

#include "jit.hpp"

#include "target.hpp"

namespace llvm {
class Module;
class DataLayout;
class TargetMachine;
}

namespace ferry::jitd {

/// What a module may contain and how to compile it.
struct compile_options {
  std::string entry_symbol;      ///< must be defined (as i32(ptr, ptr, ptr) if uniform_entry)
  jit_tier tier = jit_tier::fast;
  const llvm::StringSet<>* allowed = nullptr;  ///< symbols a module may leave undefined
  const node_target* target = nullptr;
  std::uint64_t max_data_bytes = 0;  ///< jit_config::max_data_bytes (0: no limit)
  bool meter = true;                 ///< jit_config::meter: insert fuel accounting (contain.hpp)
  bool any_symbol = false;           ///< jit_config::any_process_symbol: `allowed` is not a limit
  bool uniform_entry = true;         ///< jit_config::uniform_entry: check the entry's signature
  bool bounds = true;                ///< jit_config::bounds_checks: insert bounds checks (contain.hpp)
  /// Where to list the instructions code generation could not select on
  /// its fast path (each sends the rest of its block through SelectionDAG,
  /// the slow part of a fast-tier compile); null: not asked. For tests and
  /// for finding what slows a code object's first compile.
  std::vector<std::string>* fast_isel_misses = nullptr;
};

/// Policy check of a parsed, verified module: errc::policy_violation naming
/// the first offending symbol or construct, errc::bad_format for a missing or
/// mistyped entry.
llvm::Error check_policy(const llvm::Module& m, const llvm::DataLayout& node_layout, const compile_options& o);

/// The optimized tier's IR pipeline (O2, as clang -O2 runs it).
void optimize_module(llvm::Module& m, llvm::TargetMachine& tm);

/// Parse, verify, check, contain (contain.hpp) and compile `bitcode` into a
/// relocatable object.
/// Hostile input can crash LLVM's bitcode reader: only call this in-process
/// on bitcode whose integrity was checked and whose producer is trusted.
llvm::Expected<std::unique_ptr<llvm::MemoryBuffer>> compile_bitcode(std::span<const std::uint8_t> bitcode,
                                                                    const compile_options& o);

/// The function attributes a code generator builds a function's subtarget
/// from (its CPU, tuning, features and vector widths), on x86-64 and aarch64.
inline constexpr const char* kSubtargetAttributes[] = {"target-cpu", "tune-cpu", "target-features",
                                                       "min-legal-vector-width", "prefer-vector-width"};

/// compile_bitcode() keeps one target machine per thread, target and tier
/// from one compile to the next (a new one costs about 1 ms here, more than
/// generating a small module's code). A machine keeps a subtarget per
/// distinct set of kSubtargetAttributes among the functions it compiled,
/// and bitcode chooses those: a machine that has seen more than this many
/// is dropped and made afresh.
inline constexpr std::size_t kMaxKeptSubtargets = 16;
/// The subtargets the calling thread's kept machine for (`target`, `tier`)
/// holds (0 when none is kept). For tests.
std::size_t kept_subtargets(const node_target& target, jit_tier tier);

/// The kSubtargetAttributes values clang 19 gives to code for
/// `triple`'s architecture without -march, -mcpu or -mtune: what the Clang
/// plugin's default variant carries. Empty for architectures ferry does not
/// serve. warm_up() compiles with them, so the subtarget most code objects
/// ask for is built before the first one arrives (building one costs about
/// 1 ms here).
std::vector<std::pair<std::string, std::string>> default_subtarget_attributes(const llvm::Triple& triple);

/// The variant the Clang plugin writes by default for code of `triple`'s
/// architecture (`ferry_add_mobile`'s per-triple compiles, without -march
/// or -mcpu): its triple as clang spells it ("x86_64-unknown-linux-gnu"),
/// the CPU and features of default_subtarget_attributes(), this LLVM's
/// version; no bitcode. Most code objects a node receives offer it, so the
/// engine's warm-up has node_target::select() judge it while the node
/// starts (the first verdict cost 40-100 µs of the first load here).
code_variant default_variant(const llvm::Triple& triple);

/// Compile a small built-in module through every step a code object takes
/// at `o.tier` (bitcode reader, verifier, policy check, containment, code
/// generation), its functions carrying default_subtarget_attributes(), and
/// return its object, entry `kWarmUpEntry`, for the engine
/// to link and drop: the first compile in a process otherwise pays for
/// LLVM's one-time set-up (about 12 ms of a 14 ms first compile on this
/// machine). The module holds what real mobile code takes through the
/// slower paths (a by-value struct argument, containment's stack canaries,
/// a call returning a pair, division, select, vector code the fast tier
/// scalarizes), so those paths are set up too. A node runs it on a JIT
/// worker as it starts.
llvm::Expected<std::unique_ptr<llvm::MemoryBuffer>> warm_up(compile_options o);
/// The uniform entry of warm_up()'s object (what the engine looks up to link it).
inline constexpr const char* kWarmUpEntry = "ferry_warm_up";

}  // namespace ferry::jitd
