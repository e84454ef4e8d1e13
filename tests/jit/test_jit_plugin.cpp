// Code objects produced by the Clang plugin (ferry_add_mobile) run in the JIT
// and compute what the same functions compute natively.
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include <llvm/TargetParser/Triple.h>

#include <ferry/code_registry.hpp>
#include <ferry/mobile.hpp>

#include "code_objects.hpp"
#include "jit/compile.hpp"
#include "jit/target.hpp"

using namespace ferry;
using namespace ferry::test;

extern "C" std::int64_t jit_plugin_mix(ferry_context*, std::int64_t, std::int64_t);
extern "C" double jit_plugin_norm(ferry_context*, ferry_ref, std::uint32_t);
extern "C" std::uint64_t jit_plugin_hop(ferry_context*, ferry_ref, std::uint32_t);

namespace {
const void* g_forwarded_fn = nullptr;  // the `fn` the last ferry_forward received
}  // namespace

extern "C" std::int32_t ferry_forward(ferry_context*, const void* fn, const ferry_ref*, const void*, std::uint64_t) {
  g_forwarded_fn = fn;
  return 0;
}

namespace {

std::vector<double> g_local = {3, 4, 12};

}  // namespace

// The native copies link against the runtime API; this test's own
// ferry_local also serves the JIT through jit_config::runtime_symbols.
extern "C" void* ferry_local(ferry_context*, const ferry_ref* r, std::uint64_t size) {
  return r->offset == 0 && size <= g_local.size() * sizeof(double) ? g_local.data() : nullptr;
}

namespace {

template <class R, class... P, class... A>
R call(const jit_function& fn, A... args) {
  using layout = detail::arg_layout<P...>;
  std::byte block[layout::size() + 1];
  detail::pack_args<P...>(block, args...);
  R out{};
  REQUIRE(fn(nullptr, block, &out) == 0);
  return out;
}

}  // namespace

TEST_CASE("a plugin-built code object equals the native function") {
  const code_object* co = REQUIRE_OK(code_registry::global().find(reinterpret_cast<const void*>(&jit_plugin_mix)));
  CHECK(co->variants.size() == 2);  // x86_64 + aarch64: selection must pick ours
  temp_dir dir;
  auto engine = REQUIRE_OK(jit::create(test_config(dir.path())));
  auto fn = REQUIRE_OK(load_now(*engine, *co));
  for (std::int64_t a : {std::int64_t{0}, std::int64_t{5}, std::int64_t{-123456}})
    for (std::int64_t b : {std::int64_t{1}, std::int64_t{77}})
      CHECK(call<std::int64_t, std::int64_t, std::int64_t>(fn, a, b) == jit_plugin_mix(nullptr, a, b));
}

TEST_CASE("a plugin-built code object calls the runtime API and libm") {
  const code_object* co = REQUIRE_OK(code_registry::global().find(reinterpret_cast<const void*>(&jit_plugin_norm)));
  temp_dir dir;
  auto cfg = test_config(dir.path());
  cfg.runtime_symbols = {{"ferry_local", reinterpret_cast<void*>(&ferry_local)}};
  auto engine = REQUIRE_OK(jit::create(cfg));
  auto fn = REQUIRE_OK(load_now(*engine, *co));
  const ferry_ref here{1, 1, 0};
  CHECK(call<double, ferry_ref, std::uint32_t>(fn, here, 3u) == doctest::Approx(13.0));
  const ferry_ref away{1, 1, 8};
  CHECK(call<double, ferry_ref, std::uint32_t>(fn, away, 3u) == -1.0);
}

TEST_CASE("an address taken inside mobile code maps back to its symbol, in every tier") {
  const code_object* co = REQUIRE_OK(code_registry::global().find(reinterpret_cast<const void*>(&jit_plugin_hop)));
  temp_dir dir;
  auto cfg = test_config(dir.path());
  cfg.runtime_symbols = {{"ferry_forward", reinterpret_cast<void*>(&ferry_forward)}};
  cfg.hot_call_threshold = 2;
  auto engine = REQUIRE_OK(jit::create(cfg));
  auto fn = REQUIRE_OK(load_now(*engine, *co));
  const ferry_ref next{1, 1, 0};
  CHECK(call<std::uint64_t, ferry_ref, std::uint32_t>(fn, next, 0u) == 1);  // no forward
  g_forwarded_fn = nullptr;
  CHECK(call<std::uint64_t, ferry_ref, std::uint32_t>(fn, next, 3u) == 0);
  REQUIRE(g_forwarded_fn != nullptr);
  const void* fast = g_forwarded_fn;
  std::string symbol = "left over";
  CHECK(fn.symbol_at(fast, symbol));
  CHECK(symbol == co->symbol);
  CHECK(fn.lookup(co->symbol) == fast);
  CHECK(fn.lookup("no_such_symbol") == nullptr);
  CHECK_FALSE(fn.symbol_at(&g_local, symbol));

  for (int i = 0; i < 2000 && fn.tier() != jit_tier::optimized; ++i)  // two calls made it hot
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  REQUIRE(fn.tier() == jit_tier::optimized);
  CHECK(call<std::uint64_t, ferry_ref, std::uint32_t>(fn, next, 3u) == 0);
  CHECK(g_forwarded_fn != fast);                        // the optimized copy's address...
  symbol.clear();
  CHECK(fn.symbol_at(g_forwarded_fn, symbol));          // the optimized copy's address maps back too,
  CHECK(symbol == co->symbol);
  symbol.clear();
  CHECK(fn.symbol_at(fast, symbol));                    // and so does the fast tier's
  CHECK(symbol == co->symbol);
}

// The engine's warm-up judges the variant the plugin writes by default
// (jitd::default_variant), so a node's first load finds the verdict made
// (40-100 µs here otherwise). If the plugin's default variant changes
// (another triple spelling, CPU or feature string), the first load of
// every node judges afresh and this test says so.
TEST_CASE("warm-up: the plugin's default variant is the one the engine judges as it starts") {
  const code_object* co = REQUIRE_OK(code_registry::global().find(reinterpret_cast<const void*>(&jit_plugin_mix)));
  struct node {
    jit_target target;
    const char* arch;
  };
  for (const node& n : {node{{}, "x86_64"}, node{{"aarch64-unknown-linux-gnu", "cortex-a72", ""}, "aarch64"}}) {
    CAPTURE(n.arch);
    auto target = jitd::node_target::resolve(n.target);
    REQUIRE(static_cast<bool>(target));
    code_object usual;
    usual.variants.push_back(jitd::default_variant(target->triple()));
    REQUIRE(static_cast<bool>(target->select(usual)));
    CHECK(target->judged_variants() == 1);
    // The plugin's own variant for this architecture, alone: judged already.
    code_object built = *co;
    std::erase_if(built.variants, [&](const code_variant& v) { return llvm::Triple(v.triple).getArchName() != n.arch; });
    REQUIRE(built.variants.size() == 1);
    auto chosen = target->select(built);
    REQUIRE(static_cast<bool>(chosen));
    CHECK(target->judged_variants() == 1);
  }
}
