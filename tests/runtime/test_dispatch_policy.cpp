// The dispatch policy's verdict on its own (runtime/exec/dispatch.hpp):
// where a piece of mobile code's next run goes after runs of given lengths.
#include <doctest/doctest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "exec/dispatch.hpp"

using namespace std::chrono_literals;
using ferry::exec::dispatch_policy;
using ferry::exec::run_verdict;

namespace {
using run = dispatch_policy::run_outcome;
constexpr bool kMayBlock = true;
}

TEST_CASE("dispatch policy: code goes in place after a short run, and back to the executors after two long runs in a "
          "row, one long run that failed, or one very long run") {
  dispatch_policy policy(1, 1000us, 1);  // budget 1 ms: kLongRun budgets = 100 ms
  run_verdict v;
  CHECK_FALSE(v.in_place());  // its first run goes to an executor
  policy.ran(v, !kMayBlock, run{200us});
  CHECK(v.in_place());

  // One run over the budget is let off: a busy core stretches a short run.
  policy.ran(v, !kMayBlock, run{5ms});
  CHECK(v.in_place());
  // A second one in a row is not.
  policy.ran(v, !kMayBlock, run{5ms});
  CHECK_FALSE(v.in_place());
  // A short run brings it back, and earns it another let-off.
  policy.ran(v, !kMayBlock, run{200us});
  CHECK(v.in_place());
  policy.ran(v, !kMayBlock, run{5ms});
  CHECK(v.in_place());
  policy.ran(v, !kMayBlock, run{300us});
  policy.ran(v, !kMayBlock, run{99ms});
  CHECK(v.in_place());

  // A run of 100 budgets or more moves it at once.
  policy.ran(v, !kMayBlock, run{200us});
  policy.ran(v, !kMayBlock, run{100ms});
  CHECK_FALSE(v.in_place());

  // A run that failed over the budget (a runaway its fuel stopped) is not let off.
  policy.ran(v, !kMayBlock, run{200us});
  CHECK(v.in_place());
  policy.ran(v, !kMayBlock, run{50ms, false, /*failed=*/true});
  CHECK_FALSE(v.in_place());
  // Nor is a failure within the budget held against it.
  policy.ran(v, !kMayBlock, run{200us});
  policy.ran(v, !kMayBlock, run{300us, false, /*failed=*/true});
  CHECK(v.in_place());

  // A long run on an executor keeps it there: the let-off is for code in place.
  run_verdict w;
  policy.ran(w, !kMayBlock, run{5ms});
  CHECK_FALSE(w.in_place());
  policy.ran(w, !kMayBlock, run{5ms});
  CHECK_FALSE(w.in_place());
}

TEST_CASE("dispatch policy: code that may block, or that wrote to a persistent object, never runs in place") {
  dispatch_policy policy(1, 1000us, 1);
  run_verdict v;
  policy.ran(v, kMayBlock, run{1us});
  CHECK_FALSE(v.in_place());
  policy.ran(v, !kMayBlock, run{1us});
  CHECK(v.in_place());
  policy.ran(v, !kMayBlock, run{1us, /*sealed=*/true});  // no let-off for store I/O
  CHECK_FALSE(v.in_place());
}

TEST_CASE("dispatch policy: a zero budget runs everything on an executor") {
  dispatch_policy policy(1, 0us, 1);
  run_verdict v;
  for (auto took : {0us, 1us, 1000us}) {
    policy.ran(v, !kMayBlock, run{took});
    CHECK_FALSE(v.in_place());
  }
  CHECK(policy.load().calls == 3);  // every run counted for the heartbeats' mean
}

// computing(): calls on executors that hold a core — running, and not
// waiting for another node's answer (dispatch_policy::waiting, held by the
// runner around its waits). A node's network thread stops spinning while
// they hold every core (session::member::yield_cores_while).
TEST_CASE("dispatch policy: calls running on executors count as computing, except while they wait for another node") {
  dispatch_policy policy(2, 1000us, 1);
  CHECK(policy.computing() == 0);
  std::mutex mu;
  std::condition_variable cv;
  int started = 0, waiting = 0;
  bool release = false, wait_now = false;
  for (int i = 0; i < 2; ++i) {
    // Both run until released (the second one as if it computed); the
    // first one, once told, waits for an answer meanwhile.
    policy.run_code(run_verdict{}, false, [&, i] {
      std::unique_lock lock(mu);
      ++started;
      cv.notify_all();
      if (i == 0) {
        cv.wait(lock, [&] { return wait_now || release; });
        const dispatch_policy::waiting w(policy);
        ++waiting;
        cv.notify_all();
        cv.wait(lock, [&] { return release; });
      } else {
        cv.wait(lock, [&] { return release; });
      }
    });
  }
  std::unique_lock lock(mu);
  REQUIRE(cv.wait_for(lock, 10s, [&] { return started == 2; }));
  CHECK(policy.computing() == 2);
  wait_now = true;
  cv.notify_all();
  REQUIRE(cv.wait_for(lock, 10s, [&] { return waiting == 1; }));
  CHECK(policy.computing() == 1);
  release = true;
  cv.notify_all();
  lock.unlock();
  policy.shutdown();
  CHECK(policy.computing() == 0);
}
