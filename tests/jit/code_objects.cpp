#include "code_objects.hpp"

#include <fstream>
#include <sstream>

// Every embedded module (tests/jit/CMakeLists.txt builds them).
#define FERRY_TEST_MODULES(X) \
  X(arith) X(arith_aarch64) X(runtime_api) X(spin) X(call_system) X(read_environ) X(call_dlopen) X(inline_asm) \
  X(tls) X(huge_table) X(bad_layout) X(memcpy_address) X(byval_read) X(masked_read) \
  X(atomic_memcpy) X(stack_restore) X(va_arg) X(stack_arrays) X(segment_read) X(bounds_probe) \
  X(guard_read) X(vector_sum) X(loop_ranges) X(stride_two) X(object_overrun) X(write_kinds) X(masked_write)

extern "C" {
#define FERRY_DECLARE(name)                     \
  extern const unsigned char ferry_bc_##name[]; \
  extern const unsigned long ferry_bc_##name##_size;
FERRY_TEST_MODULES(FERRY_DECLARE)
#undef FERRY_DECLARE
}

namespace ferry::test {

std::span<const std::uint8_t> bitcode(std::string_view module) {
#define FERRY_MATCH(name) \
  if (module == #name) return {ferry_bc_##name, ferry_bc_##name##_size};
  FERRY_TEST_MODULES(FERRY_MATCH)
#undef FERRY_MATCH
  FAIL("no embedded bitcode named " << module);
  return {};
}

code_variant host_variant(std::string_view module, std::string features) {
  code_variant v;
  v.triple = "x86_64-pc-linux-gnu";
  v.cpu = "x86-64";
  v.features = std::move(features);
  v.llvm_version = FERRY_TEST_LLVM_VERSION;
  const auto bc = bitcode(module);
  v.bitcode.assign(bc.begin(), bc.end());
  return v;
}

code_variant aarch64_variant(std::string_view module) {
  code_variant v = host_variant(std::string(module) + "_aarch64", "+neon");
  v.triple = "aarch64-unknown-linux-gnu";
  v.cpu = "generic";
  return v;
}

code_object make_code(std::string name, std::string entry, std::uint32_t args_size, std::uint32_t result_size,
                      std::vector<code_variant> variants) {
  code_object co;
  co.symbol = name;
  co.name = std::move(name);
  co.entry_symbol = std::move(entry);
  co.args_size = args_size;
  co.result_size = result_size;
  co.variants = std::move(variants);
  co.seal();
  return co;
}

code_object mix_code() { return make_code("test::mix", "ferry_test_mix_entry", 16, 8, {host_variant("arith")}); }

code_object hostile_code(std::string_view module) {
  return make_code(std::string("test::") + std::string(module), "ferry_test_hostile_entry", 0, 8,
                   {host_variant(module)});
}

jit_config test_config(const std::filesystem::path& dir) {
  jit_config c;
  c.cache_dir = dir;
  c.hot_call_threshold = 0;
  if (kUnderAddressSanitizer) c.check_memory_bytes = 0;  // ASan's shadow memory does not fit any RLIMIT_AS
  return c;
}

result<jit_function> load_now(jit& engine, const code_object& code) { return engine.load(code).get(); }

bool cpu_has(std::string_view flag) {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) != 0) continue;
    std::istringstream words(line);
    std::string w;
    while (words >> w)
      if (w == flag) return true;
    return false;
  }
  return false;
}

std::int64_t call_mix(const jit_function& fn, std::int64_t a, std::int64_t b) {
  const std::int64_t args[2] = {a, b};
  std::int64_t out = 0;
  REQUIRE(fn(nullptr, args, &out) == 0);
  return out;
}

}  // namespace ferry::test
