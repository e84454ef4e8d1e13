// Caches (resident, memory, disk), coalescing, and unloading while a call
// is running.
#include <atomic>
#include <fstream>
#include <thread>

#include <unistd.h>

#include "code_objects.hpp"

using namespace ferry;
using namespace ferry::test;

namespace {

// A node that compiled `code` into the disk cache at `dir`, then stopped.
void compile_and_stop(const std::filesystem::path& dir, const code_object& code) {
  auto first = REQUIRE_OK(jit::create(test_config(dir)));
  REQUIRE_OK(load_now(*first, code));
  CHECK(first->stats().compiles == 1);
}

}  // namespace

TEST_CASE("a second load in-process does not compile again") {
  temp_dir dir;
  auto engine = REQUIRE_OK(jit::create(test_config(dir.path())));
  auto a = REQUIRE_OK(load_now(*engine, mix_code()));
  auto b = REQUIRE_OK(load_now(*engine, mix_code()));
  CHECK(reinterpret_cast<void*>(a.entry()) == reinterpret_cast<void*>(b.entry()));
  const auto s = engine->stats();
  CHECK(s.compiles == 1);
  CHECK(s.resident_hits == 1);
}

TEST_CASE("unload then load relinks from the memory cache") {
  temp_dir dir;
  auto engine = REQUIRE_OK(jit::create(test_config(dir.path())));
  const auto code = mix_code();
  {
    auto fn = REQUIRE_OK(load_now(*engine, code));
    CHECK(call_mix(fn, 1, 2) == ferry_test_mix(1, 2));
  }
  REQUIRE(engine->unload(code.id()).ok());
  CHECK_FALSE(engine->is_loaded(code.id()));
  CHECK(engine->stats().live_code == 0);
  CHECK(engine->unload(code.id()).code() == errc::not_found);
  auto fn = REQUIRE_OK(load_now(*engine, code));
  CHECK(call_mix(fn, 3, 4) == ferry_test_mix(3, 4));
  const auto s = engine->stats();
  CHECK(s.compiles == 1);
  CHECK(s.memory_hits == 1);
}

// The process's resident memory, in bytes (/proc/self/statm).
static std::uint64_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::uint64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
}

TEST_CASE("code unloaded gives its memory back to the next link") {
  // Linked code lives in reserved memory that a removed object returns
  // (docs/jit.md, "Where linked code lives"): relinking an object again and
  // again must not touch new pages each time.
  temp_dir dir;
  auto engine = REQUIRE_OK(jit::create(test_config(dir.path())));
  const auto code = mix_code();
  REQUIRE_OK(load_now(*engine, code));
  REQUIRE(engine->unload(code.id()).ok());
  const std::uint64_t before = resident_bytes();
  constexpr int kCycles = 2000;  // with every handle kept alive instead, it grew by 38 MB
  for (int i = 0; i < kCycles; ++i) {
    auto fn = REQUIRE_OK(load_now(*engine, code));
    if (i % 100 == 0) REQUIRE(call_mix(fn, i, 7) == ferry_test_mix(i, 7));
    fn = {};
    REQUIRE(engine->unload(code.id()).ok());
  }
  const std::uint64_t after = resident_bytes();
  const std::uint64_t grown = after > before ? after - before : 0;
  INFO("resident memory grew by " << grown << " bytes over " << kCycles << " relinks");
  if (!kUnderAddressSanitizer) CHECK(grown < (std::uint64_t{4} << 20));  // ASan's quarantine keeps freed memory
  CHECK(engine->stats().compiles == 1);
  CHECK(engine->stats().memory_hits == kCycles);
}

TEST_CASE("a restarted node loads from the disk cache without compiling") {
  temp_dir dir;
  const auto code = mix_code();
  compile_and_stop(dir.path(), code);
  auto second = REQUIRE_OK(jit::create(test_config(dir.path())));
  auto fn = REQUIRE_OK(load_now(*second, code));
  CHECK(call_mix(fn, 5, 6) == ferry_test_mix(5, 6));
  const auto s = second->stats();
  CHECK(s.compiles == 0);
  CHECK(s.disk_hits == 1);
}

TEST_CASE("a damaged disk cache entry is ignored and replaced") {
  temp_dir dir;
  const auto code = mix_code();
  compile_and_stop(dir.path(), code);
  int damaged = 0;
  for (const auto& f : std::filesystem::directory_iterator(dir.path())) {
    std::fstream io(f.path(), std::ios::in | std::ios::out | std::ios::binary);
    io.seekp(100);
    io.put('\x7f');
    ++damaged;
  }
  REQUIRE(damaged == 1);
  auto second = REQUIRE_OK(jit::create(test_config(dir.path())));
  auto fn = REQUIRE_OK(load_now(*second, code));
  CHECK(call_mix(fn, 5, 6) == ferry_test_mix(5, 6));
  CHECK(second->stats().disk_hits == 0);
  CHECK(second->stats().compiles == 1);
}

TEST_CASE("the tier is part of the cache key") {
  temp_dir dir;
  const auto code = mix_code();
  compile_and_stop(dir.path(), code);
  auto cfg = test_config(dir.path());
  cfg.first_tier = jit_tier::optimized;
  auto optimized = REQUIRE_OK(jit::create(cfg));
  REQUIRE_OK(load_now(*optimized, code));
  CHECK(optimized->stats().compiles == 1);
  CHECK(optimized->stats().disk_hits == 0);
}

TEST_CASE("concurrent loads of the same code compile once") {
  temp_dir dir;
  auto cfg = test_config(dir.path());
  cfg.threads = 2;
  auto engine = REQUIRE_OK(jit::create(cfg));
  const auto code = mix_code();
  std::vector<std::future<result<jit_function>>> loads;
  for (int i = 0; i < 16; ++i) loads.push_back(engine->load(code));
  for (auto& f : loads) CHECK(call_mix(REQUIRE_OK(f.get()), 9, 9) == ferry_test_mix(9, 9));
  const auto s = engine->stats();
  CHECK(s.compiles == 1);
  CHECK(s.coalesced + s.resident_hits == 15);
}

TEST_CASE("unloading while a call runs leaves the code alive until the call ends") {
  temp_dir dir;
  auto engine = REQUIRE_OK(jit::create(test_config(dir.path())));
  const auto code = make_code("test::spin", "ferry_test_spin_entry", 16, 4, {host_variant("spin")});
  int started = 0, release = 0;
  std::int32_t out = 0;
  std::thread caller;
  {
    auto fn = REQUIRE_OK(load_now(*engine, code));
    caller = std::thread([fn, &started, &release, &out] {
      int* args[2] = {&started, &release};
      fn(nullptr, args, &out);
    });
  }
  while (!__atomic_load_n(&started, __ATOMIC_ACQUIRE)) std::this_thread::yield();
  REQUIRE(engine->unload(code.id()).ok());
  CHECK_FALSE(engine->is_loaded(code.id()));
  CHECK(engine->stats().live_code == 1);  // the running call holds it
  __atomic_store_n(&release, 1, __ATOMIC_RELEASE);
  caller.join();
  CHECK(out == 42);
  CHECK(engine->stats().live_code == 0);  // freed with the last handle

  // Calling again after the unload: load (from cache) and run.
  auto again = REQUIRE_OK(load_now(*engine, code));
  int args_started = 0, args_release = 1;
  int* args[2] = {&args_started, &args_release};
  CHECK(again(nullptr, args, &out) == 0);
  CHECK(engine->stats().compiles == 1);
}

TEST_CASE("handles outlive the engine") {
  temp_dir dir;
  jit_function fn;
  {
    auto engine = REQUIRE_OK(jit::create(test_config(dir.path())));
    fn = REQUIRE_OK(load_now(*engine, mix_code()));
  }
  CHECK(call_mix(fn, 1, 1) == ferry_test_mix(1, 1));
}

TEST_CASE("loads, calls, tier-ups and unloads from several threads at once") {
  temp_dir dir;
  auto cfg = test_config(dir.path());
  cfg.threads = 2;
  cfg.hot_call_threshold = 20;
  auto engine = REQUIRE_OK(jit::create(cfg));
  const auto code = mix_code();
  std::atomic<int> wrong{0}, calls{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 150; ++i) {
        auto fn = engine->load(code).get();
        if (!fn) {
          ++wrong;
          continue;
        }
        for (int k = 0; k < 10; ++k) {
          const std::int64_t args[2] = {i, t + k};
          std::int64_t out = 0;
          if ((*fn)(nullptr, args, &out) != 0 || out != ferry_test_mix(i, t + k)) ++wrong;
          ++calls;
        }
        if (i % 7 == t) (void)engine->unload(code.id());  // not_found when another thread was first
      }
    });
  for (auto& th : threads) th.join();
  CHECK(wrong == 0);
  CHECK(calls == 4 * 150 * 10);
  const auto s = engine->stats();
  CHECK(s.compiles <= 2);  // one per tier; every other load and tier-up came from a cache
  CHECK(s.failures == 0);
  (void)engine->unload(code.id());
  // A tier-up job may still hold the last instance for a moment.
  for (int i = 0; i < 1000 && engine->stats().live_code != 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  CHECK(engine->stats().live_code == 0);
}
