// Mutated code objects: thousands of them, zero node crashes. Mutations the
// integrity hash covers must be refused as corrupt (or bad_format) without
// LLVM seeing them; mutations re-sealed with a valid hash go through the
// untrusted-mode helper, where a crash or hang costs an error.
#include <map>
#include <random>

#include "code_objects.hpp"

using namespace ferry;
using namespace ferry::test;

namespace {

void mutate(std::vector<std::uint8_t>& bytes, std::mt19937& rng) {
  const int flips = 1 + static_cast<int>(rng() % 4);
  for (int i = 0; i < flips; ++i) {
    switch (rng() % 3) {
      case 0: bytes[rng() % bytes.size()] ^= static_cast<std::uint8_t>(1u << (rng() % 8)); break;
      case 1: bytes[rng() % bytes.size()] = static_cast<std::uint8_t>(rng()); break;
      default: bytes[rng() % bytes.size()] = 0xff; break;
    }
  }
}

std::string outcome(const result<jit_function>& r) { return r ? "ok" : std::string(to_string(r.code())); }

}  // namespace

TEST_CASE("3000 mutated encodings: refused or loaded, never a crash") {
  temp_dir dir;
  auto engine = REQUIRE_OK(jit::create(test_config(dir.path())));
  const auto pristine = mix_code().encode();
  std::mt19937 rng(20261121);
  std::map<std::string, int> seen;
  for (int i = 0; i < 3000; ++i) {
    auto bytes = pristine;
    mutate(bytes, rng);
    auto decoded = code_object::decode(bytes);
    if (!decoded) {
      ++seen[std::string("decode:") + std::string(to_string(decoded.code()))];
      continue;
    }
    // Only manifest fields outside the hashed bitcode changed: the bitcode is
    // intact, so loading in trusted mode is safe and must give a typed answer.
    const auto r = load_now(*engine, *decoded);
    ++seen["load:" + outcome(r)];
    if (r) CHECK(engine->unload(decoded->id()).ok());
  }
  for (const auto& [what, count] : seen) MESSAGE(what << " " << count);
  CHECK(seen["decode:corrupt"] > 1000);  // most flips land in the hash-checked bitcode
}

TEST_CASE("3000 bitcode mutations under the original hash: all corrupt, nothing parsed") {
  temp_dir dir;
  auto engine = REQUIRE_OK(jit::create(test_config(dir.path())));
  std::mt19937 rng(7);
  for (int i = 0; i < 3000; ++i) {
    auto code = mix_code();
    mutate(code.variants[0].bitcode, rng);
    if (code.variants[0].bitcode == mix_code().variants[0].bitcode) continue;  // a flip undone by another
    CHECK_ERRC(load_now(*engine, code), errc::corrupt);
  }
  CHECK(engine->stats().compiles == 0);
}

TEST_CASE("re-sealed bitcode mutations in untrusted mode: typed errors, node survives") {
  temp_dir dir;
  auto cfg = test_config(dir.path());
  cfg.trust = jit_trust::untrusted;
  cfg.disk_cache = false;
  cfg.check_timeout = std::chrono::milliseconds(5000);
  auto engine = REQUIRE_OK(jit::create(cfg));
  std::mt19937 rng(99);
  std::map<std::string, int> seen;
  for (int i = 0; i < 1500; ++i) {
    auto code = mix_code();
    mutate(code.variants[0].bitcode, rng);
    code.seal();
    const auto r = load_now(*engine, code);
    ++seen[outcome(r)];
    // Mutated code that compiles is never called: it is arbitrary code.
    if (r) CHECK(engine->unload(code.id()).ok());
    else
      CHECK_MESSAGE((r.code() == errc::bad_format || r.code() == errc::policy_violation ||
                     r.code() == errc::compile_error || r.code() == errc::corrupt || r.code() == errc::timeout),
                    r.error().describe());
  }
  for (const auto& [what, count] : seen) MESSAGE(what << " " << count);
  MESSAGE("helper failures (crash/hang, survived): " << engine->stats().sandbox_failures);
  // The engine still works after all that.
  auto fn = REQUIRE_OK(load_now(*engine, mix_code()));
  CHECK(call_mix(fn, 2, 3) == ferry_test_mix(2, 3));
}
