// Untrusted mode: compile in the ferry-jit-check helper; a helper that
// crashes or hangs costs an error, never the node.
#include "code_objects.hpp"

using namespace ferry;
using namespace ferry::test;

namespace {

jit_config untrusted(const std::filesystem::path& dir) {
  auto cfg = test_config(dir);
  cfg.trust = jit_trust::untrusted;
  return cfg;
}

}  // namespace

TEST_CASE("untrusted mode compiles in the helper and runs the result") {
  temp_dir dir;
  auto engine = REQUIRE_OK(jit::create(untrusted(dir.path())));
  auto fn = REQUIRE_OK(load_now(*engine, mix_code()));
  CHECK(call_mix(fn, 8, 9) == ferry_test_mix(8, 9));
  const auto s = engine->stats();
  CHECK(s.sandbox_checks == 1);
  CHECK(s.compiles == 1);
  CHECK(s.sandbox_failures == 0);
}

TEST_CASE("untrusted mode enforces the same policy, with the same errors") {
  temp_dir dir;
  auto engine = REQUIRE_OK(jit::create(untrusted(dir.path())));
  const auto r = load_now(*engine, hostile_code("call_system"));
  CHECK_ERRC(r, errc::policy_violation);
  CHECK(r.error().message().find("'system'") != std::string::npos);
  auto garbage = mix_code();
  garbage.variants[0].bitcode.resize(100);
  garbage.seal();
  CHECK_ERRC(load_now(*engine, garbage), errc::bad_format);
  CHECK(engine->stats().sandbox_failures == 0);
}

TEST_CASE("a helper that crashes gives corrupt, and the node carries on") {
  temp_dir dir;
  auto cfg = untrusted(dir.path());
  cfg.check_command = {"/bin/sh", "-c", "kill -SEGV $$"};
  auto engine = REQUIRE_OK(jit::create(cfg));
  const auto r = load_now(*engine, mix_code());
  CHECK_ERRC(r, errc::corrupt);
  CHECK(r.error().message().find("signal") != std::string::npos);
  CHECK_ERRC(load_now(*engine, mix_code()), errc::corrupt);  // a fresh helper each time
  CHECK(engine->stats().sandbox_failures == 2);
}

TEST_CASE("a helper that hangs is killed at the timeout") {
  temp_dir dir;
  auto cfg = untrusted(dir.path());
  cfg.check_command = {"/bin/sh", "-c", "exec sleep 30"};
  cfg.check_timeout = std::chrono::milliseconds(300);
  auto engine = REQUIRE_OK(jit::create(cfg));
  const auto t0 = std::chrono::steady_clock::now();
  CHECK_ERRC(load_now(*engine, mix_code()), errc::timeout);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));
}

TEST_CASE("untrusted mode without a runnable helper is refused at creation") {
  temp_dir dir;
  auto cfg = untrusted(dir.path());
  cfg.check_command = {"/nonexistent/ferry-jit-check"};
  CHECK_ERRC(jit::create(cfg), errc::not_found);
}
