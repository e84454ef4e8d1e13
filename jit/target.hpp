// jit/target.hpp — what this node is, and which variant of a code object
// runs on it.
#pragma once

#include <memory>
#include <string>

#include <llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h>
#include <llvm/Support/Error.h>
#include <llvm/TargetParser/Triple.h>

#include <ferry/code_object.hpp>
#include "jit.hpp"

namespace llvm {
class MCSubtargetInfo;
}

namespace ferry::jitd {

/// The host CPU features as an LLVM feature string ("+sse2,-avx512f,...").
std::string host_features();

/// The node's code generation target with its resolved feature set.
class node_target {
 public:
  /// Empty fields of `t` are filled from the host.
  static llvm::Expected<node_target> resolve(const jit_target& t);
  ~node_target();
  node_target(node_target&&) noexcept;
  node_target& operator=(node_target&&) noexcept;

  [[nodiscard]] const jit_target& description() const { return desc_; }
  [[nodiscard]] const llvm::Triple& triple() const { return triple_; }
  /// Builder for target machines that generate this node's code.
  [[nodiscard]] llvm::orc::JITTargetMachineBuilder machine_builder() const;

  /// The variant of `code` that runs here (most specialised eligible one),
  /// or errc::no_matching_variant listing each offer and why it was refused.
  llvm::Expected<const code_variant*> select(const code_object& code) const;
  /// How many distinct variants select() has judged (its verdicts are
  /// remembered). For tests.
  [[nodiscard]] std::size_t judged_variants() const;

 private:
  node_target() = default;
  // Empty string when `v` runs here, else why not.
  std::string refusal(const code_variant& v, unsigned* specialisation) const;
  // refusal(), remembered per (triple, cpu, features, LLVM version): the
  // answer never changes and computing it builds LLVM subtarget tables.
  std::string cached_refusal(const code_variant& v, unsigned* specialisation) const;

  struct verdict_cache;

  jit_target desc_;
  llvm::Triple triple_;
  std::unique_ptr<llvm::MCSubtargetInfo> sti_;
  std::unique_ptr<verdict_cache> verdicts_;
};

}  // namespace ferry::jitd
