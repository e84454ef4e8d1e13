// Test code objects: bitcode built by CMake (ferry_bitcode) wrapped into a
// code_object the way the plugin will. Swap for plugin output when it lands.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include <ferry/code_object.hpp>
#include "jit/jit.hpp"

#include "test_util.hpp"

namespace ferry::test {

/// Embedded bitcode by module name: "arith", "arith_aarch64", "runtime_api",
/// "spin", "call_system", "read_environ", "call_dlopen", "inline_asm", "tls", "huge_table",
/// "bad_layout", "memcpy_address", "byval_read", "masked_read", "atomic_memcpy", "stack_restore",
/// "va_arg", "stack_arrays", "segment_read", "bounds_probe".
std::span<const std::uint8_t> bitcode(std::string_view module);

/// An x86_64 (host) variant of `module`; cpu/features as clang -O2 emits.
code_variant host_variant(std::string_view module, std::string features = "+sse2");
/// The aarch64 variant (only "arith" exists).
code_variant aarch64_variant(std::string_view module);

/// A sealed code object with one or more variants.
code_object make_code(std::string name, std::string entry, std::uint32_t args_size, std::uint32_t result_size,
                      std::vector<code_variant> variants);

/// ferry_test_mix(a, b) as a code object (host variant only).
code_object mix_code();
/// The native reference: extern "C" in arith.c, linked into the tests.
extern "C" std::int64_t ferry_test_mix(std::int64_t a, std::int64_t b);

/// A hostile module's code object (entry ferry_test_hostile_entry).
code_object hostile_code(std::string_view module);

/// Whether these tests are built with AddressSanitizer (its shadow memory
/// fits no RLIMIT_AS, and its quarantine keeps freed memory resident).
#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kUnderAddressSanitizer = true;
#elif defined(__has_feature)
inline constexpr bool kUnderAddressSanitizer = __has_feature(address_sanitizer);
#else
inline constexpr bool kUnderAddressSanitizer = false;
#endif

/// Engine config for tests: cache in `dir`, no tier-up unless asked.
jit_config test_config(const std::filesystem::path& dir);

/// Load synchronously (waits on the future).
result<jit_function> load_now(jit& engine, const code_object& code);

/// Does this CPU report `flag` in /proc/cpuinfo?
bool cpu_has(std::string_view flag);

/// Runs `fn` as mix(a, b).
std::int64_t call_mix(const jit_function& fn, std::int64_t a, std::int64_t b);

}  // namespace ferry::test
