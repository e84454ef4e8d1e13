// The policy: what mobile code may name and contain. Each refusal must name
// the offending symbol or construct.
#include <algorithm>
#include <numeric>
#include <string>
#include <vector>

#include "code_objects.hpp"
#include "exec/call_context.hpp"  // runtime/: entering mobile code as a node does

using namespace ferry;
using namespace ferry::test;

namespace {

void check_refused(std::string_view module, std::string_view named) {
  temp_dir dir;
  auto engine = REQUIRE_OK(jit::create(test_config(dir.path())));
  const auto r = load_now(*engine, hostile_code(module));
  CHECK_ERRC(r, errc::policy_violation);
  CHECK_MESSAGE(r.error().message().find(named) != std::string::npos, r.error().message());
  CHECK(engine->stats().compiles == 0);
}

struct fake_node {
  std::uint64_t value = 1000;
};
fake_node g_node;

extern "C" void* fake_local(ferry_context*, const ferry_ref* r, std::uint64_t size) {
  return r->offset == 0 && size == sizeof g_node.value ? &g_node.value : nullptr;
}
extern "C" std::uint32_t fake_node_id(ferry_context*) { return 7; }

// Hostile code `module` loaded by an engine whose first tier is `tier`,
// without the disk cache (each tier compiles its own).
struct loaded_at_tier {
  std::unique_ptr<jit> engine;
  jit_function fn;
  loaded_at_tier(const std::filesystem::path& dir, jit_tier tier, std::string_view module) {
    auto cfg = test_config(dir);
    cfg.first_tier = tier;
    cfg.disk_cache = false;
    engine = REQUIRE_OK(jit::create(cfg));
    fn = REQUIRE_OK(load_now(*engine, hostile_code(module)));
  }
};

}  // namespace

TEST_CASE("system() is not on the allow-list") { check_refused("call_system", "'system'"); }
TEST_CASE("environ is not on the allow-list") { check_refused("read_environ", "'environ'"); }
TEST_CASE("dlopen() is not on the allow-list") { check_refused("call_dlopen", "'dlopen'"); }
TEST_CASE("inline asm is refused before codegen") { check_refused("inline_asm", "inline asm"); }
TEST_CASE("thread-local variables are refused") { check_refused("tls", "thread-local variable 'calls'"); }
TEST_CASE("a module with another data layout is refused") { check_refused("bad_layout", "data layout"); }
TEST_CASE("with bounds checks, a libc function's address is refused (calls through it would go unchecked)") {
  check_refused("memcpy_address", "address of 'memcpy'");
  temp_dir dir;
  auto cfg = test_config(dir.path());
  cfg.bounds_checks = false;  // the trusted policy: the same code loads and runs
  auto engine = REQUIRE_OK(jit::create(cfg));
  const auto fn = REQUIRE_OK(load_now(*engine, hostile_code("memcpy_address")));
  const std::uint64_t in = 42;
  std::uint64_t out = 0;
  CHECK(fn(nullptr, &in, &out) == 0);
  CHECK(out == 42);
}

TEST_CASE("with bounds checks, what touches memory the checks cannot follow is refused, what clang emits is not") {
  // Element-wise atomic memcpy; the stack pointer moved to a loaded
  // address; a va_arg instruction (reads through a va_list's pointers).
  check_refused("atomic_memcpy", "intrinsic 'llvm.memcpy.element.unordered.atomic.p0.p0.i64'");
  check_refused("stack_restore", "llvm.stackrestore in function 'ferry_test_hostile_entry'");
  check_refused("va_arg", "va_arg in function 'ferry_test_first'");
  // A load through %fs (x86 address space 257): a check would see the offset.
  check_refused("segment_read", "address space 257 in function 'ferry_test_hostile_entry'");
  // The guard contained code's stack canaries are compared with: named only
  // by what containment adds after the policy check.
  check_refused("guard_read", "'__stack_chk_guard'");
  // A variable-length array in a loop and a variadic function: stacksave,
  // stackrestore, va_start, va_copy and va_end as clang emits them load
  // under the checks, and give the right answer on the trusted policy.
  temp_dir dir;
  {
    auto engine = REQUIRE_OK(jit::create(test_config(dir.path())));
    CHECK(load_now(*engine, hostile_code("stack_arrays")).ok());
  }
  auto cfg = test_config(dir.path());
  cfg.bounds_checks = false;
  auto engine = REQUIRE_OK(jit::create(cfg));
  const auto fn = REQUIRE_OK(load_now(*engine, hostile_code("stack_arrays")));
  for (const std::int64_t n : {1, 9, 100}) {
    std::int64_t out = 0;
    CHECK(fn(nullptr, &n, &out) == 0);
    CHECK(out == n + 6);
  }
  CHECK(load_now(*engine, hostile_code("stack_restore")).ok());  // refused for the checks' sake only
}

namespace {

// What bounds_probe.c returns when its last read is its own `rounds`.
std::int64_t expected_probe_sum(std::int64_t rounds) {
  std::int64_t total = 0;
  for (std::int64_t r = 0; r < rounds; ++r) total += (r & 7) + 1 + r + 2 * r + rounds;
  return total + rounds;
}

}  // namespace

TEST_CASE("a loop's hoisted check admits what its accesses would, and refuses what they would") {
  // The optimized tier checks a loop that reads on every iteration once,
  // over the whole range, before the loop (jit/contain.cpp,
  // hoist_loop_checks; test_jit_contain shows where the checks go); the
  // fast tier checks each read. Both must give the same answers.
  temp_dir dir;
  std::vector<std::int64_t> words(64);
  for (std::size_t i = 0; i < words.size(); ++i) words[i] = static_cast<std::int64_t>(i + 1);
  const auto at = reinterpret_cast<std::uintptr_t>(words.data());
  for (const jit_tier tier : {jit_tier::fast, jit_tier::optimized}) {
    CAPTURE(static_cast<int>(tier));
    const loaded_at_tier loaded(dir.path(), tier, "loop_ranges");
    const auto& fn = loaded.fn;
    // {address, count, mode (0: every iteration reads, 1: stop at `stop`, 2: backwards), stop}
    const auto run = [&](std::uint64_t address, std::uint64_t count, std::uint64_t mode, std::int64_t stop,
                         std::int64_t& out) {
      std::uint64_t args[4] = {address, count, mode, static_cast<std::uint64_t>(stop)};
      exec::call_context cx;
      cx.writable.add(words.data(), words.size() * sizeof(std::int64_t));
      return exec::run_mobile(cx, fn, args, sizeof args, &out, sizeof out);
    };
    const auto fault = static_cast<std::int32_t>(errc::memory_fault);
    std::int64_t out = -1;
    CHECK(run(at, 64, 0, 0, out) == 0);  // the whole array
    CHECK(out == 64 * 65 / 2);
    CHECK(run(at + 8, 63, 0, 0, out) == 0);
    CHECK(out == 64 * 65 / 2 - 1);
    CHECK(run(at, 65, 0, 0, out) == fault);      // one word past its end
    CHECK(run(at - 8, 2, 0, 0, out) == fault);   // one word before it
    CHECK(run(at, std::uint64_t{1} << 61 | 1, 0, 0, out) == fault);  // the addresses wrap
    out = -1;
    CHECK(run(8, 0, 0, 0, out) == 0);  // a loop never entered checks nothing
    CHECK(out == 0);
    // Down from the last word: the same range, walked the other way.
    CHECK(run(at, 64, 2, 0, out) == 0);
    CHECK(out == 64 * 65 * 129 / 6);  // sum of i * i
    CHECK(run(at + 8, 64, 2, 0, out) == fault);  // its first read is past the end
    CHECK(run(at - 8, 64, 2, 0, out) == fault);  // its last read is before the start
    // Left early, inside the array, however far `count` reaches.
    CHECK(run(at, 1000, 1, 11, out) == 0);
    CHECK(out == 55);
    CHECK(run(at, 1000, 1, -1, out) == fault);  // never left early: runs past the end
    // The unrolled chain from word `stop`: an odd and an even number of
    // words (the remainder loop takes one or none), and past either end.
    const auto chain = [&](std::uint64_t from, std::uint64_t to) {
      std::uint64_t t = 0;  // unsigned: it wraps
      for (std::uint64_t i = from; i < to; ++i) t = t * 31 + static_cast<std::uint64_t>(words[i]);
      return static_cast<std::int64_t>(t);
    };
    for (const std::uint64_t from : {0, 1, 2, 5}) {
      CAPTURE(from);
      CHECK(run(at, 64, 3, static_cast<std::int64_t>(from), out) == 0);
      CHECK(out == chain(from, 64));
      CHECK(run(at, 63, 3, static_cast<std::int64_t>(from), out) == 0);
      CHECK(out == chain(from, 63));
      CHECK(run(at, 65, 3, static_cast<std::int64_t>(from), out) == fault);
      CHECK(run(at, 66, 3, static_cast<std::int64_t>(from), out) == fault);
    }
    CHECK(run(at - 16, 66, 3, 0, out) == fault);  // its first reads are before the array
    // The engine still runs the loop right.
    CHECK(run(at, 10, 0, 0, out) == 0);
    CHECK(out == 55);
  }
}

TEST_CASE("an access computed from a local array or a global stays inside it, at both tiers") {
  // object_overrun.c reads or writes word `index` of a local array, or
  // reads one of a global, both of 8 words. Outside [0, 8) the address is
  // still the call's (its stack, another local, the module's other global),
  // which ferry_bounds admits; computed from that array, it may only be in
  // it (jit/contain.cpp, own_object_of; ferry_bounds_object).
  temp_dir dir;
  for (const jit_tier tier : {jit_tier::fast, jit_tier::optimized}) {
    CAPTURE(static_cast<int>(tier));
    const loaded_at_tier loaded(dir.path(), tier, "object_overrun");
    std::string failure;
    const auto run = [&](std::int64_t index, std::int64_t mode, std::int64_t& out) {
      std::int64_t args[2] = {index, mode};
      exec::call_context cx;
      const std::int32_t rc = exec::run_mobile(cx, loaded.fn, args, sizeof args, &out, sizeof out);
      failure = rc ? cx.failure.message() : std::string();
      return rc;
    };
    const auto fault = static_cast<std::int32_t>(errc::memory_fault);
    std::int64_t out = -1;
    for (std::int64_t i = 0; i < 8; ++i) {
      CAPTURE(i);
      CHECK(run(i, 0, out) == 0);
      CHECK(out == i);
      CHECK(run(i, 1, out) == 0);
      CHECK(out == 28 - i + 100);
      CHECK(run(i, 2, out) == 0);
      CHECK(out == 10 + i);
    }
    for (const std::int64_t i : {-1, -2, -8, 8, 9, 16}) {
      CAPTURE(i);
      CHECK(run(i, 0, out) == fault);
      CHECK_MESSAGE(failure.find("outside the local array or global of 64 bytes") != std::string::npos, failure);
      CHECK(run(i, 2, out) == fault);
      CHECK_MESSAGE(failure.find("outside the local array or global of 64 bytes") != std::string::npos, failure);
    }
    for (const std::int64_t i : {-1, -2, -8}) {  // below the array: no canary there to notice a write
      CAPTURE(i);
      CHECK(run(i, 1, out) == fault);
      CHECK_MESSAGE(failure.find("outside the local array or global of 64 bytes") != std::string::npos, failure);
    }
    CHECK(run(3, 1, out) == 0);  // after the faults, still right
    CHECK(out == 125);
  }
}

TEST_CASE("a loop the unroller's form would trust a wrong count for is refused before it writes") {
  // stride_two.ll writes every other word from `start` until the index
  // equals `end`; with end - start odd it never does, and writes on past
  // its array. The optimized tier hoists its check only with the
  // remainder of (end - start) / 2 checked too (jit/contain.cpp,
  // equality_exit): the call ends with memory_fault before its first
  // write, where the fast tier's check per write stops it at the array's
  // end. The words after the array are the call's to never touch.
  temp_dir dir;
  for (const jit_tier tier : {jit_tier::fast, jit_tier::optimized}) {
    CAPTURE(static_cast<int>(tier));
    const loaded_at_tier loaded(dir.path(), tier, "stride_two");
    std::vector<std::int64_t> words(128, 0);  // the call's: [0, 64); the rest is not
    const auto run = [&](std::uint64_t start, std::uint64_t end, std::int64_t& out) {
      std::uint64_t args[3] = {reinterpret_cast<std::uintptr_t>(words.data()), start, end};
      exec::call_context cx;
      cx.writable.add(words.data(), 64 * sizeof(std::int64_t));
      return exec::run_mobile(cx, loaded.fn, args, sizeof args, &out, sizeof out);
    };
    const auto written = [&](std::size_t from, std::size_t to) {
      return std::count(words.begin() + static_cast<std::ptrdiff_t>(from), words.begin() + static_cast<std::ptrdiff_t>(to), 7);
    };
    std::int64_t out = -1;
    CHECK(run(0, 64, out) == 0);  // words 0, 2, ..., 62
    CHECK(out == 32);
    CHECK(written(0, 64) == 32);
    CHECK(words[62] == 7);
    CHECK(words[63] == 0);
    std::fill(words.begin(), words.end(), 0);
    CHECK(run(1, 63, out) == 0);  // words 1, 3, ..., 61
    CHECK(out == 31);
    CHECK(written(0, 64) == 31);
    std::fill(words.begin(), words.end(), 0);
    const auto fault = static_cast<std::int32_t>(errc::memory_fault);
    CHECK(run(0, 63, out) == fault);  // odd: the index passes 63 and goes on
    CHECK(written(64, 128) == 0);
    if (tier == jit_tier::optimized) CHECK(written(0, 64) == 0);  // refused before the loop
    std::fill(words.begin(), words.end(), 0);
    CHECK(run(0, 66, out) == fault);  // even, but word 64 is not the call's
    CHECK(written(64, 128) == 0);
    if (tier == jit_tier::optimized) CHECK(written(0, 64) == 0);
    std::fill(words.begin(), words.end(), 0);
    CHECK(run(10, 20, out) == 0);  // after the faults, still right
    CHECK(out == 5);
    CHECK(written(0, 64) == 5);
  }
}

TEST_CASE("bounds checks work the same at both tiers: inline compares (optimized) and calls (fast)") {
  // The fast tier writes each check as a call to ferry_bounds, the
  // optimized tier as inline compares with the regions it used last
  // (jit/contain.hpp): the same accesses must pass and fail under both.
  temp_dir dir;
  std::vector<std::uint8_t> elsewhere(64, 1);  // the test's heap: never handed to the call
  for (const jit_tier tier : {jit_tier::fast, jit_tier::optimized}) {
    CAPTURE(static_cast<int>(tier));
    const loaded_at_tier loaded(dir.path(), tier, "bounds_probe");
    const auto& fn = loaded.fn;
    CHECK(fn.tier() == tier);
    const auto run = [&](std::uint64_t address, std::int64_t rounds, std::int64_t& out) {
      std::uint64_t args[2] = {address, static_cast<std::uint64_t>(rounds)};
      if (address == 0) args[0] = reinterpret_cast<std::uintptr_t>(&args[1]);  // its own argument block
      exec::call_context cx;
      const std::int32_t rc = exec::run_mobile(cx, fn, args, sizeof args, &out, sizeof out);
      if (rc != 0) CHECK_MESSAGE(cx.failure.message().find("outside the memory this call may touch") !=
                                     std::string::npos, cx.failure.message());
      return rc;
    };
    // Five regions in turn, more than the runtime's cache of recent ones.
    for (const std::int64_t rounds : {0, 1, 7, 1000}) {
      CAPTURE(rounds);
      std::int64_t out = -1;
      CHECK(run(0, rounds, out) == 0);
      CHECK(out == expected_probe_sum(rounds));
    }
    std::int64_t out = 0;
    CHECK(run(reinterpret_cast<std::uintptr_t>(elsewhere.data()), 100, out) == static_cast<std::int32_t>(errc::memory_fault));
    std::int64_t above = 0;  // this frame is above the call's entry: not its stack
    CHECK(run(reinterpret_cast<std::uintptr_t>(&above), 100, out) == static_cast<std::int32_t>(errc::memory_fault));
    CHECK(run(8, 1, out) == static_cast<std::int32_t>(errc::memory_fault));  // unmapped: the check comes first
    // After the faults, the same engine and function still run correctly.
    CHECK(run(0, 50, out) == 0);
    CHECK(out == expected_probe_sum(50));
  }
}

TEST_CASE("region_set: ranges that overlap or adjoin are kept as one region, inline and sorted alike") {
  // A persistent node's cx.local admits each range it hands out, several
  // of one object; an access across two that adjoin must pass.
  static std::byte mem[2048];
  const auto at = [&](std::size_t off) { return static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(mem + off)); };
  exec::region_set set;
  for (std::size_t k = 0; k < 12; ++k) set.add(mem + 100 * k, 16);  // more than kInline, apart
  for (std::size_t k = 0; k < 12; ++k) {
    CAPTURE(k);
    CHECK(set.find(at(100 * k), 16));
    CHECK_FALSE(set.find(at(100 * k + 8), 16));  // past its end
  }
  set.add(mem + 16, 84);  // adjoins the first two: [0, 116)
  CHECK(set.find(at(8), 100));
  set.add(mem + 1008, 200);  // overlaps two of the sorted ones: [1000, 1208)
  CHECK(set.find(at(1000), 208));
  CHECK_FALSE(set.find(at(990), 20));  // [900, 916) and [1000, ...) do not meet
  set.add(mem + 1000, 8);              // inside one already: nothing changes
  CHECK(set.find(at(1004), 200));
}

TEST_CASE("a code object whose tables exceed the node's data limit is refused before codegen") {
  // 3 KiB of bitcode declaring a 256 MiB constant table: compiled, it cost a
  // node 530 MiB and a 256 MiB cache file.
  for (const auto trust : {jit_trust::trusted, jit_trust::untrusted}) {
    CAPTURE(static_cast<int>(trust));
    temp_dir dir;
    auto cfg = test_config(dir.path());
    cfg.trust = trust;
    auto engine = REQUIRE_OK(jit::create(cfg));
    const auto code = hostile_code("huge_table");
    CHECK(code.variants[0].bitcode.size() < 64 * 1024);
    const auto r = load_now(*engine, code);
    CHECK_ERRC(r, errc::too_large);
    CHECK_MESSAGE(r.error().message().find("max_data_bytes") != std::string::npos, r.error().message());
    CHECK(engine->stats().compiles == 0);
    std::size_t cached = 0;  // nothing compiled, nothing written to the disk cache
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir.path()))
      cached += e.path().extension() == ".o";
    CHECK(cached == 0);
  }
  // With a limit above the table's size it compiles.
  temp_dir dir;
  auto cfg = test_config(dir.path());
  cfg.max_data_bytes = std::uint64_t{512} << 20;
  auto engine = REQUIRE_OK(jit::create(cfg));
  CHECK(load_now(*engine, hostile_code("huge_table")).ok());
}

TEST_CASE("runtime API calls resolve to the node's implementations") {
  temp_dir dir;
  auto cfg = test_config(dir.path());
  cfg.runtime_symbols = {{"ferry_local", reinterpret_cast<void*>(&fake_local)},
                         {"ferry_node_id", reinterpret_cast<void*>(&fake_node_id)}};
  auto engine = REQUIRE_OK(jit::create(cfg));
  auto code = make_code("test::runtime", "ferry_test_runtime_entry", 24, 8, {host_variant("runtime_api")});
  auto fn = REQUIRE_OK(load_now(*engine, code));
  ferry_ref here{1, 2, 0}, elsewhere{1, 2, 8};
  std::uint64_t out = 0;
  CHECK(fn(nullptr, &here, &out) == 0);
  CHECK(out == 1007);
  CHECK(fn(nullptr, &elsewhere, &out) == 10);
}

TEST_CASE("a runtime API function the node did not supply is refused by name") {
  temp_dir dir;
  auto cfg = test_config(dir.path());
  cfg.runtime_symbols = {{"ferry_node_id", reinterpret_cast<void*>(&fake_node_id)}};
  auto engine = REQUIRE_OK(jit::create(cfg));
  auto code = make_code("test::runtime", "ferry_test_runtime_entry", 24, 8, {host_variant("runtime_api")});
  const auto r = load_now(*engine, code);
  CHECK_ERRC(r, errc::policy_violation);
  CHECK(r.error().message().find("'ferry_local'") != std::string::npos);
}

TEST_CASE("the allow-list is configurable") {
  temp_dir dir;
  auto cfg = test_config(dir.path());
  cfg.allowed_process_symbols.push_back("environ");
  auto engine = REQUIRE_OK(jit::create(cfg));
  auto fn = REQUIRE_OK(load_now(*engine, hostile_code("read_environ")));
  char** env = nullptr;
  CHECK(fn(nullptr, nullptr, &env) == 0);
  CHECK(env == environ);
}

TEST_CASE("any_process_symbol and uniform_entry = false open the policy for trusted code only") {
  temp_dir dir;
  // An entry with another signature: refused by default, accepted (and
  // callable as what it is) with uniform_entry = false.
  const auto mix = make_code("test::mix_raw", "ferry_test_mix", 0, 8, {host_variant("arith")});
  {
    auto engine = REQUIRE_OK(jit::create(test_config(dir.path())));
    CHECK_ERRC(load_now(*engine, mix), errc::bad_format);
  }
  auto cfg = test_config(dir.path());
  cfg.uniform_entry = false;
  cfg.any_process_symbol = true;
  auto engine = REQUIRE_OK(jit::create(cfg));
  auto fn = REQUIRE_OK(load_now(*engine, mix));
  // The entry is not the uniform one: call it as the function it is (through void*, on purpose).
  const auto raw = reinterpret_cast<std::int64_t (*)(std::int64_t, std::int64_t)>(reinterpret_cast<void*>(fn.entry()));
  CHECK(raw(6, -4) == ferry_test_mix(6, -4));
  // Any process symbol links (system() is linked, never called here).
  CHECK(load_now(*engine, hostile_code("call_system")).has_value());
  cfg.trust = jit_trust::untrusted;
  CHECK_ERRC(jit::create(cfg), errc::invalid_argument);
}

TEST_CASE("invalid engine settings are refused") {
  jit_config cfg;
  cfg.threads = 0;
  CHECK_ERRC(jit::create(cfg), errc::invalid_argument);
  jit_config null_symbol;
  null_symbol.runtime_symbols = {{"ferry_local", nullptr}};
  CHECK_ERRC(jit::create(null_symbol), errc::invalid_argument);
}

TEST_CASE("compiled code beyond jit_config::max_code_bytes is refused, and unloading makes room") {
  temp_dir dir;
  auto cfg = test_config(dir.path());
  cfg.max_code_bytes = 1;
  std::uint64_t one = 0;  // bytes of one linked mix object, from the refusal
  {
    auto engine = REQUIRE_OK(jit::create(cfg));
    const auto r = load_now(*engine, mix_code());
    REQUIRE_FALSE(r.ok());
    CHECK(r.code() == errc::out_of_memory);
    const std::string m = r.error().message();
    CHECK_MESSAGE(m.find("max_code_bytes") != std::string::npos, m);
    const auto at = m.find(" bytes of code)");
    REQUIRE(at != std::string::npos);
    one = std::stoull(m.substr(m.rfind('(', at) + 1));
    REQUIRE(one > 0);
  }
  cfg.max_code_bytes = one + one / 2;  // room for one, not two
  auto engine = REQUIRE_OK(jit::create(cfg));
  const auto first = mix_code();
  const auto second = make_code("test::mix_again", "ferry_test_mix_entry", 16, 8, {host_variant("arith")});
  REQUIRE(load_now(*engine, first).ok());
  CHECK_ERRC(load_now(*engine, second), errc::out_of_memory);
  REQUIRE_OK(engine->unload(first.id()));
  CHECK(load_now(*engine, second).ok());
}

TEST_CASE("a write is admitted only where the call may write: memory it may only read refuses it, at both tiers") {
  // write_kinds.c writes in each way checked code does (stores in loops and
  // at an address read from memory, memset, memcpy, an atomic, a
  // read-modify-write through one pointer, a copy loop, libc through a
  // pointer); masked_write.ll with a masked store and a scatter. Into
  // memory the call may write each works; into memory it may only read
  // (call_context::read_only: what cx.view and cx.fetch hand out) each ends
  // the call with memory_fault before a byte changes, while reads there are
  // admitted (jit/contain.cpp: writes call ferry_bounds_write and are cached
  // in slots of their own).
  temp_dir dir;
  constexpr std::size_t kWords = 16;
  const auto addr = [](const void* p) { return static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(p)); };
  const auto sum = [](const std::vector<std::int64_t>& v) { return std::accumulate(v.begin(), v.end(), std::int64_t{0}); };
  for (const jit_tier tier : {jit_tier::fast, jit_tier::optimized}) {
    CAPTURE(static_cast<int>(tier));
    const loaded_at_tier kinds(dir.path(), tier, "write_kinds");
    const loaded_at_tier vectors(dir.path(), tier, "masked_write");
    std::vector<std::int64_t> mine(kWords), viewed(kWords), elsewhere(kWords, 9);
    const auto reset = [&] {
      for (std::size_t i = 0; i < kWords; ++i) {
        mine[i] = static_cast<std::int64_t>(100 + i);
        viewed[i] = static_cast<std::int64_t>(200 + i);
      }
      mine[0] = viewed[0] = 3;  // the index mode 2 writes at
    };
    std::string failure;
    const auto run = [&](const jit_function& fn, std::int64_t* dst, const std::int64_t* src, std::uint64_t mode,
                         std::int64_t& out) {
      std::uint64_t args[4] = {addr(dst), addr(src), kWords, mode};
      exec::call_context cx;
      cx.writable.add(mine.data(), kWords * sizeof(std::int64_t));
      cx.read_only.add(viewed.data(), kWords * sizeof(std::int64_t));
      const std::int32_t rc = exec::run_mobile(cx, fn, args, sizeof args, &out, sizeof out);
      failure = rc ? cx.failure.message() : std::string();
      return rc;
    };
    const auto fault = static_cast<std::int32_t>(errc::memory_fault);
    std::int64_t out = -1;

    // Reads: anywhere the call may read.
    reset();
    CHECK(run(kinds.fn, mine.data(), viewed.data(), 0, out) == 0);
    CHECK(out == sum(mine));
    CHECK(run(kinds.fn, viewed.data(), mine.data(), 0, out) == 0);
    CHECK(out == sum(viewed));

    // Writes into the call's own memory, each kind (reading `viewed` as it goes).
    struct expected_write {
      std::uint64_t mode;
      std::int64_t result;  // the sum of `mine` after the write (mode 8: the exponent)
    };
    reset();
    const std::int64_t before = sum(mine);
    const std::vector<expected_write> writes = {
        {1, static_cast<std::int64_t>(kWords * (kWords - 1) / 2)},
        {2, before - mine[3] + 5},
        {3, 0},
        {4, sum(viewed)},
        {5, before + 1},
        {6, before + static_cast<std::int64_t>(kWords)},
        {7, 3 * sum(viewed) + static_cast<std::int64_t>(kWords)},
        {8, 5},  // frexp(16) = 0.5 * 2^5
    };
    for (const auto& w : writes) {
      CAPTURE(w.mode);
      reset();
      out = -1;
      CHECK_MESSAGE(run(kinds.fn, mine.data(), viewed.data(), w.mode, out) == 0, failure);
      CHECK(out == w.result);
    }
    reset();
    CHECK_MESSAGE(run(vectors.fn, mine.data(), nullptr, 0, out) == 0, failure);
    CHECK(mine[0] == 1);
    CHECK(mine[1] == 2);
    CHECK(mine[2] == 102);  // its lane is off
    CHECK(mine[3] == 4);
    CHECK(mine[7] == 8);

    // The same writes into memory the call may only read: refused, nothing written.
    for (const auto& w : writes) {
      CAPTURE(w.mode);
      reset();
      const std::vector<std::int64_t> kept = viewed;
      CHECK(run(kinds.fn, viewed.data(), mine.data(), w.mode, out) == fault);
      CHECK_MESSAGE(failure.find("into memory this call may only read") != std::string::npos, failure);
      CHECK(viewed == kept);
    }
    reset();
    const std::vector<std::int64_t> kept = viewed;
    CHECK(run(vectors.fn, viewed.data(), nullptr, 0, out) == fault);
    CHECK_MESSAGE(failure.find("into memory this call may only read") != std::string::npos, failure);
    CHECK(viewed == kept);

    // Memory that is not the call's at all says so.
    CHECK(run(kinds.fn, elsewhere.data(), mine.data(), 1, out) == fault);
    CHECK_MESSAGE(failure.find("outside the memory this call may touch") != std::string::npos, failure);
    CHECK(elsewhere == std::vector<std::int64_t>(kWords, 9));

    // After the faults, still right.
    reset();
    CHECK(run(kinds.fn, mine.data(), viewed.data(), 7, out) == 0);
    CHECK(out == 3 * sum(viewed) + static_cast<std::int64_t>(kWords));
  }
}
