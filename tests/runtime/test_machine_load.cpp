// session::machine_load on its own (runtime/session/machine_load.hpp):
// reading the kernel's count of runnable threads, and when the machine
// counts as crowded, so that the session's pollers yield at once.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "session/machine_load.hpp"

using namespace std::chrono_literals;
using ferry::session::machine_load;
using ferry::session::runnable_threads;

TEST_CASE("machine load: the runnable-thread count is read from /proc/loadavg's text, and nothing from another form") {
  CHECK(runnable_threads("0.52 0.58 0.59 3/467 12345\n") == 3u);
  CHECK(runnable_threads("12.00 8.50 4.25 17/1024 99") == 17u);
  CHECK(runnable_threads("0.00 0.00 0.00 0/1 1") == 0u);
  for (const char* bad : {"", "0.52 0.58 0.59", "0.52 0.58 0.59 ", "0.52 0.58 0.59 x/467 1", "0.52 0.58 0.59 3 467",
                          "0.52 0.58 0.59 /467 1", "0.52 0.58 0.59 3", "0.52 0.58 0.59 -3/467 1",
                          "0.52 0.58 0.59 99999999999/467 1"}) {
    CAPTURE(bad);
    CHECK_FALSE(runnable_threads(bad).has_value());
  }
}

TEST_CASE("machine load: two samples in a row with more runnable threads than cores make it crowded, one at or below "
          "clears it") {
  machine_load load(2);
  CHECK_FALSE(load.crowded());
  load.observe(3);
  CHECK_FALSE(load.crowded());  // one sample: a moment's extra thread
  load.observe(3);
  CHECK(load.crowded());
  load.observe(5);
  CHECK(load.crowded());
  load.observe(2);  // as many as cores: clear at once
  CHECK_FALSE(load.crowded());
  load.observe(3);
  CHECK_FALSE(load.crowded());  // the count starts again
  load.observe(1);
  load.observe(3);
  CHECK_FALSE(load.crowded());
  load.observe(3);
  CHECK(load.crowded());
}

TEST_CASE("machine load: threads that spin are counted by the kernel, sampled at most every sample period") {
  // Three spinning threads and this one: at least 4 runnable, above 2 cores.
  std::atomic<bool> stop{false};
  std::vector<std::thread> spinners;
  for (int i = 0; i < 3; ++i)
    spinners.emplace_back([&] {
      while (!stop.load(std::memory_order_relaxed)) {
      }
    });
  std::this_thread::sleep_for(20ms);  // let them start
  machine_load load(2);
  const auto t0 = std::chrono::steady_clock::now();
  load.sample(t0);
  load.sample(t0 + machine_load::kSamplePeriod / 2);  // too soon: not read
  const bool after_one_period = load.crowded();
  load.sample(t0 + machine_load::kSamplePeriod);
  const bool after_two = load.crowded();
  stop = true;
  for (auto& t : spinners) t.join();
  CHECK_FALSE(after_one_period);
  CHECK(after_two);
  // The same samples with as many cores as any machine that runs this: clear.
  machine_load roomy(1u << 20);
  roomy.sample(t0);
  roomy.sample(t0 + machine_load::kSamplePeriod);
  CHECK_FALSE(roomy.crowded());
}

TEST_CASE("machine load: a poller polls its configured time without yielding on a clear machine, none on a crowded one") {
  auto& load = machine_load::process();
  load.observe(0);
  CHECK(ferry::session::poll_without_yield(12us) == 12us);
  load.observe(1u << 30);
  load.observe(1u << 30);
  CHECK(ferry::session::poll_without_yield(12us) == 0us);
  load.observe(0);
  CHECK(ferry::session::poll_without_yield(12us) == 12us);
}
