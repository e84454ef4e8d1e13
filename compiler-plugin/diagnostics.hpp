// Every diagnostic the plugin emits, in one place. Each error names its rule
// in brackets ([ferry-<rule>], documented in docs/plugin.md) and says what to
// do instead; tests/plugin/fail/ has one source per rule.
#pragma once

#include <clang/Basic/Diagnostic.h>

namespace ferry::plugin::diag {

#define FERRY_DIAG(name, level, text) \
  inline unsigned name(clang::DiagnosticsEngine& d) { return d.getCustomDiagID(clang::DiagnosticsEngine::level, text); }

FERRY_DIAG(subject, Error, "[ferry-subject] 'ferry::mobile' applies to functions only, not to %0")
FERRY_DIAG(lambda, Error,
           "[ferry-lambda] a lambda cannot be ferry::mobile: code objects are found by symbol; make it a named function")
FERRY_DIAG(member, Error,
           "[ferry-member] non-static member function %0 cannot be ferry::mobile: the object it works on does not "
           "travel; make it static, or a free function that takes a ferry::ref")
FERRY_DIAG(variadic, Error,
           "[ferry-variadic] ferry::mobile function %0 cannot be variadic: its argument block has a fixed layout")
FERRY_DIAG(context, Error,
           "[ferry-context] the first parameter of ferry::mobile function %0 must be 'ferry::context&' "
           "(C: 'ferry_context*')")
FERRY_DIAG(param, Error, "[ferry-param] parameter %0 of ferry::mobile function %1 has type %2, which %3")
FERRY_DIAG(result, Error, "[ferry-result] ferry::mobile function %0 returns %1, which %2")
FERRY_DIAG(call, Error,
           "[ferry-call] ferry::mobile function %0 calls %1, which is not defined in this translation unit: mobile "
           "code may call only functions defined in the same file (e.g. static inline in a header), the ferry "
           "runtime API and a small libc/libm set (docs/plugin.md)")
FERRY_DIAG(inline_asm, Error,
           "[ferry-asm] ferry::mobile function %0 contains inline assembly: mobile code travels as portable bitcode "
           "and is compiled for x86_64 and aarch64; use C/C++ or a compiler builtin")
FERRY_DIAG(thread_local_var, Error,
           "[ferry-thread-local] ferry::mobile function %0 uses thread_local variable %1: the thread that runs "
           "mobile code belongs to the runtime; pass the state as an argument or keep it in a ferry object")
FERRY_DIAG(mutable_global, Error,
           "[ferry-mutable-global] ferry::mobile function %0 uses mutable global %1: every node gets its own copy, "
           "so writes would not be seen anywhere else; make it const, or keep the state in a ferry object passed "
           "as a ferry::ref")
FERRY_DIAG(linkage, Error,
           "[ferry-linkage] ferry::mobile function %0 has internal linkage (static, or in an anonymous namespace), "
           "but this target is compiled by a compiler other than clang 19 (e.g. GCC), which cannot map its address "
           "to its code object; give it external linkage, or compile the target with clang 19")
FERRY_DIAG(extract, Error, "[ferry-extract] ferry::mobile function '%0' cannot travel: its code %1")
FERRY_DIAG(extract_more, Note, "'%0' also cannot travel because its code %1")
FERRY_DIAG(reached_from, Note, "%0 is reached from ferry::mobile function %1 through this call")
FERRY_DIAG(plugin, Error, "[ferry-plugin] %0")

#undef FERRY_DIAG

/// Reasons for diag::param / diag::result (%3 / %2).
inline constexpr const char* is_pointer =
    "is a pointer: an address means nothing on another node; pass a ferry::ref<T> instead";
inline constexpr const char* is_reference =
    "is a reference: pass it by value, or pass a ferry::ref<T> to data in the object space";
inline constexpr const char* not_trivially_copyable =
    "is not trivially copyable: arguments and results are copied byte for byte between nodes";

}  // namespace ferry::plugin::diag
