// Loading and running code objects: results, variant selection, integrity,
// asynchrony, tiers.
#include <thread>

#include "code_objects.hpp"

using namespace ferry;
using namespace ferry::test;

TEST_CASE("a loaded code object computes what the native function computes") {
  temp_dir dir;
  auto engine = REQUIRE_OK(jit::create(test_config(dir.path())));
  auto fn = REQUIRE_OK(load_now(*engine, mix_code()));
  CHECK(fn.tier() == jit_tier::fast);
  for (std::int64_t a : {std::int64_t{0}, std::int64_t{1}, std::int64_t{-7}, std::int64_t{123456789}, INT64_MAX})
    for (std::int64_t b : {0, 3, -99, 1 << 20}) CHECK(call_mix(fn, a, b) == ferry_test_mix(a, b));
  CHECK(engine->stats().compiles == 1);
}

TEST_CASE("a cold load compiles on an engine thread, not the caller's") {
  temp_dir dir;
  auto engine = REQUIRE_OK(jit::create(test_config(dir.path())));
  std::promise<std::thread::id> where;
  engine->load(mix_code(), [&](result<jit_function> r) {
    CHECK(r.ok());
    where.set_value(std::this_thread::get_id());
  });
  CHECK(where.get_future().get() != std::this_thread::get_id());
}

TEST_CASE("variant selection picks the variant for this node's triple") {
  temp_dir dir;
  auto engine = REQUIRE_OK(jit::create(test_config(dir.path())));
  // aarch64 first: selection must not just take the first offer.
  auto code = make_code("test::mix2", "ferry_test_mix_entry", 16, 8, {aarch64_variant("arith"), host_variant("arith")});
  auto fn = REQUIRE_OK(load_now(*engine, code));
  CHECK(call_mix(fn, 5, 6) == ferry_test_mix(5, 6));
}

TEST_CASE("only a foreign-triple variant: no_matching_variant naming both sides") {
  temp_dir dir;
  auto engine = REQUIRE_OK(jit::create(test_config(dir.path())));
  auto code = make_code("test::arm_only", "ferry_test_mix_entry", 16, 8, {aarch64_variant("arith")});
  const auto r = load_now(*engine, code);
  CHECK_ERRC(r, errc::no_matching_variant);
  CHECK(r.error().message().find("aarch64") != std::string::npos);
  CHECK(r.error().message().find("x86_64") != std::string::npos);
  CHECK(engine->stats().compiles == 0);
}

TEST_CASE("a variant needing a CPU feature the host lacks is not eligible") {
  temp_dir dir;
  auto engine = REQUIRE_OK(jit::create(test_config(dir.path())));
  SUBCASE("a feature LLVM knows, missing on this CPU") {
    if (cpu_has("avx512f")) {
      MESSAGE("skipped: this CPU has avx512f");
      return;
    }
    auto code = make_code("test::avx512", "ferry_test_mix_entry", 16, 8, {host_variant("arith", "+avx512f")});
    const auto r = load_now(*engine, code);
    CHECK_ERRC(r, errc::no_matching_variant);
    CHECK(r.error().message().find("avx512f") != std::string::npos);
  }
  SUBCASE("a feature this node does not know at all") {
    auto code = make_code("test::future_isa", "ferry_test_mix_entry", 16, 8, {host_variant("arith", "+ferry-isa")});
    const auto r = load_now(*engine, code);
    CHECK_ERRC(r, errc::no_matching_variant);
    CHECK(r.error().message().find("ferry-isa") != std::string::npos);
  }
  SUBCASE("a CPU implying features the host lacks") {
    if (cpu_has("avx512f")) {
      MESSAGE("skipped: this CPU has avx512f");
      return;
    }
    auto v = host_variant("arith", "");
    v.cpu = "skylake-avx512";
    auto code = make_code("test::skx", "ferry_test_mix_entry", 16, 8, {v});
    CHECK_ERRC(load_now(*engine, code), errc::no_matching_variant);
  }
  SUBCASE("the most specialised eligible variant wins over a baseline one") {
    auto plain = host_variant("arith", "");
    auto wide = host_variant("arith", cpu_has("avx512f") ? "+ferry-isa" : "+avx512f");
    auto code = make_code("test::two_x86", "ferry_test_mix_entry", 16, 8, {wide, plain});
    auto fn = REQUIRE_OK(load_now(*engine, code));
    CHECK(call_mix(fn, 1, 2) == ferry_test_mix(1, 2));
  }
}

TEST_CASE("bitcode from another LLVM major is not eligible") {
  temp_dir dir;
  auto engine = REQUIRE_OK(jit::create(test_config(dir.path())));
  auto v = host_variant("arith");
  v.llvm_version = "22.0.0";
  CHECK_ERRC(load_now(*engine, make_code("test::llvm22", "ferry_test_mix_entry", 16, 8, {v})),
             errc::no_matching_variant);
}

TEST_CASE("bitcode that does not match its hash is refused before parsing") {
  temp_dir dir;
  auto engine = REQUIRE_OK(jit::create(test_config(dir.path())));
  auto code = mix_code();
  code.variants[0].bitcode[code.variants[0].bitcode.size() / 2] ^= 0x40;
  CHECK_ERRC(load_now(*engine, code), errc::corrupt);
  CHECK(engine->stats().compiles == 0);
}

TEST_CASE("truncated and garbage inputs fail with bad_format") {
  temp_dir dir;
  auto engine = REQUIRE_OK(jit::create(test_config(dir.path())));
  SUBCASE("truncated encoding") {
    auto bytes = mix_code().encode();
    for (std::size_t keep : {std::size_t{0}, std::size_t{3}, bytes.size() / 2, bytes.size() - 1}) {
      const auto r = code_object::decode(std::span(bytes).first(keep));
      CHECK(!r.ok());
    }
  }
  SUBCASE("truncated bitcode with a matching hash") {
    auto code = mix_code();
    code.variants[0].bitcode.resize(code.variants[0].bitcode.size() / 3);
    code.seal();
    CHECK_ERRC(load_now(*engine, code), errc::bad_format);
  }
  SUBCASE("random garbage with a matching hash") {
    auto code = mix_code();
    std::uint32_t x = 12345;
    for (auto& b : code.variants[0].bitcode) b = static_cast<std::uint8_t>((x = x * 1103515245 + 12345) >> 16);
    code.seal();
    CHECK_ERRC(load_now(*engine, code), errc::bad_format);
  }
  SUBCASE("an entry symbol the module does not define") {
    auto code = mix_code();
    code.entry_symbol = "no_such_entry";
    const auto r = load_now(*engine, code);
    CHECK_ERRC(r, errc::bad_format);
    CHECK(r.error().message().find("no_such_entry") != std::string::npos);
  }
}

namespace {

// An engine that never tiers up (hot_call_threshold 0), mix_code loaded.
struct never_tiers_up {
  temp_dir dir;
  std::unique_ptr<jit> engine;
  jit_function fn;
  never_tiers_up() {
    auto cfg = test_config(dir.path());
    cfg.hot_call_threshold = 0;
    engine = REQUIRE_OK(jit::create(cfg));
    fn = REQUIRE_OK(load_now(*engine, mix_code()));
  }
};

}  // namespace

TEST_CASE("hot code is recompiled optimized in the background and swapped in") {
  temp_dir dir;
  auto cfg = test_config(dir.path());
  cfg.hot_call_threshold = 50;
  auto engine = REQUIRE_OK(jit::create(cfg));
  auto fn = REQUIRE_OK(load_now(*engine, mix_code()));
  const auto fast_entry = fn.entry();
  for (int i = 0; i < 50; ++i) CHECK(call_mix(fn, i, 7) == ferry_test_mix(i, 7));
  for (int i = 0; i < 2000 && fn.tier() != jit_tier::optimized; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  REQUIRE(fn.tier() == jit_tier::optimized);
  CHECK(reinterpret_cast<void*>(fn.entry()) != reinterpret_cast<void*>(fast_entry));
  CHECK(call_mix(fn, 11, 12) == ferry_test_mix(11, 12));
  // The fast code stays valid while the code object is loaded.
  const std::int64_t args[2] = {11, 12};
  std::int64_t out = 0;
  CHECK(fast_entry(nullptr, args, &out) == 0);
  CHECK(out == ferry_test_mix(11, 12));
  const auto s = engine->stats();
  CHECK(s.tier_ups == 1);
  CHECK(s.compiles == 2);
}

TEST_CASE("code whose calls ran hot_run_time in all is recompiled optimized, however few the calls") {
  temp_dir dir;
  auto cfg = test_config(dir.path());
  cfg.hot_call_threshold = 1000;
  cfg.hot_run_time = std::chrono::milliseconds(20);
  auto engine = REQUIRE_OK(jit::create(cfg));
  auto fn = REQUIRE_OK(load_now(*engine, mix_code()));
  // Three calls, each reported as a 5 ms run: 15 ms, not yet hot.
  for (int i = 0; i < 3; ++i) {
    CHECK(call_mix(fn, i, 7) == ferry_test_mix(i, 7));
    fn.ran_for(std::chrono::milliseconds(5));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK(fn.tier() == jit_tier::fast);
  CHECK(engine->stats().tier_ups == 0);
  CHECK(engine->stats().recompiling == 0);
  // The fourth reaches 20 ms: recompiled in the background after 4 calls,
  // counted as recompiling from the request until the optimized code is in
  // (the compile takes milliseconds; the stats are read microseconds after).
  CHECK(call_mix(fn, 3, 7) == ferry_test_mix(3, 7));
  fn.ran_for(std::chrono::milliseconds(5));
  const jit_stats requested = engine->stats();
  CHECK((requested.recompiling == 1 || requested.tier_ups == 1));
  for (int i = 0; i < 2000 && (fn.tier() != jit_tier::optimized || engine->stats().recompiling != 0); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  REQUIRE(fn.tier() == jit_tier::optimized);
  CHECK(fn.calls() == 4);
  CHECK(call_mix(fn, 11, 12) == ferry_test_mix(11, 12));
  CHECK(engine->stats().tier_ups == 1);
  CHECK(engine->stats().recompiling == 0);
  // Without tier-ups (hot_call_threshold 0) run time does not start one either.
  never_tiers_up never;
  never.fn.ran_for(std::chrono::seconds(10));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK(never.fn.tier() == jit_tier::fast);
  CHECK(never.engine->stats().tier_ups == 0);
}

TEST_CASE("optimize() answers once the code runs optimized, at once when it does, and says why it cannot") {
  temp_dir dir;
  auto cfg = test_config(dir.path());
  cfg.hot_call_threshold = 1000;  // never reached here: only optimize() tiers up
  auto engine = REQUIRE_OK(jit::create(cfg));
  auto fn = REQUIRE_OK(load_now(*engine, mix_code()));
  const auto fast_entry = fn.entry();
  REQUIRE(fn.tier() == jit_tier::fast);
  // Two callers at once share one recompile; both hear after the swap.
  std::promise<std::pair<status, jit_tier>> first, second;
  fn.optimize([&](status s) { first.set_value({s, fn.tier()}); });
  fn.optimize([&](status s) { second.set_value({s, fn.tier()}); });
  for (auto* p : {&first, &second}) {
    auto f = p->get_future();
    REQUIRE(f.wait_for(std::chrono::seconds(30)) == std::future_status::ready);
    const auto [s, tier] = f.get();
    CHECK(s.ok());
    CHECK(tier == jit_tier::optimized);
  }
  CHECK(reinterpret_cast<void*>(fn.entry()) != reinterpret_cast<void*>(fast_entry));
  CHECK(call_mix(fn, 11, 12) == ferry_test_mix(11, 12));
  CHECK(engine->stats().tier_ups == 1);
  // Already optimized: answered on this thread, nothing compiled.
  bool answered = false;
  fn.optimize([&](status s) { answered = s.ok(); });
  CHECK(answered);
  CHECK(engine->stats().tier_ups == 1);
  CHECK(engine->stats().compiles == 2);

  // An engine that never tiers up says so.
  never_tiers_up never;
  status why;
  never.fn.optimize([&](status s) { why = std::move(s); });
  CHECK(why.code() == errc::unsupported);
  CHECK(never.fn.tier() == jit_tier::fast);
}

TEST_CASE("first_tier optimized compiles once, optimized") {
  temp_dir dir;
  auto cfg = test_config(dir.path());
  cfg.first_tier = jit_tier::optimized;
  auto engine = REQUIRE_OK(jit::create(cfg));
  auto fn = REQUIRE_OK(load_now(*engine, mix_code()));
  CHECK(fn.tier() == jit_tier::optimized);
  CHECK(call_mix(fn, 3, 4) == ferry_test_mix(3, 4));
}
