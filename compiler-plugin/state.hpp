// What the AST side of the plugin learns about each mobile function and
// hands to the IR side (same process, one translation unit per run).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <clang/Basic/Diagnostic.h>
#include <clang/Basic/SourceLocation.h>

#include <ferry/code_object.hpp>

namespace ferry::plugin {

/// The annotation string that marks a function mobile (an AnnotateAttr: a
/// string argument would crash clang 19, see docs/platform-notes.md).
inline constexpr const char* mobile_annotation = "ferry.mobile";

/// How the target's own compile emits a mobile function's symbol (for the
/// index records of a target compiled by another compiler, index.cpp).
enum class linkage {
  strong,       ///< external, defined by this translation unit
  discardable,  ///< external, emitted only where used (inline, template)
  internal,     ///< static or in an anonymous namespace: not reachable by name
};

struct mobile_fn {
  std::string symbol;       ///< mangled: the key everywhere
  std::string name;         ///< readable, with template arguments
  std::string call_symbol;  ///< the AST-built thunk "__ferry_call.<symbol>" (emit mode)
  std::vector<code_param> params;  ///< after the context
  std::vector<std::uint32_t> offsets;  ///< of each param in the argument block
  std::uint32_t args_size = 0;
  std::uint32_t result_size = 0;
  std::string result_type;
  clang::SourceLocation loc;
  enum linkage linkage = linkage::strong;
};

struct state {
  /// -fplugin-arg-ferry-emit=<file>: write this TU's code objects there
  /// (a `ferry_code` section image); without it the plugin checks and
  /// indexes only (the target's own compile).
  std::string emit_path;
  /// -fplugin-arg-ferry-index=<file>: also write a C source holding this
  /// TU's `ferry_fn_index` records, which reference the mobile functions by
  /// symbol (index.cpp). For targets whose own compiles do not run the
  /// plugin (GCC): there, a mobile function with internal linkage is an
  /// error.
  std::string index_path;
  clang::DiagnosticsEngine* diags = nullptr;
  std::map<std::string, mobile_fn> fns;  // by mangled symbol (sorted: deterministic output)
};

/// Prefix of the uniform entry every code object defines.
inline constexpr const char* entry_prefix = "__ferry_entry.";
inline constexpr const char* call_prefix = "__ferry_call.";

}  // namespace ferry::plugin
