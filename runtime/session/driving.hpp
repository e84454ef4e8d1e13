// How a thread waits for an answer while it drives a member's progress
// itself: the runtime's progress driver (the client), the link a waiter
// drives it through, and the one waiting loop every waiter of the runtime
// uses (a call's future, ferry_ifunc_wait): poll first, then sleep on the
// transport between turns.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <thread>

#include "session/machine_load.hpp"

namespace ferry::detail {

/// What a waiting thread uses to make progress itself rather than sleep until
/// the runtime's progress thread wakes it (implemented by the runtime).
class progress_driver {
 public:
  /// One turn of progress on the calling thread; false if another thread is
  /// driving right now.
  virtual bool drive_once() = 0;
  /// drive_once(), then, if it found nothing to do, block until the
  /// transport or posted work wakes this thread or `max` passes.
  virtual bool drive_or_sleep(std::chrono::microseconds max) = 0;

 protected:
  ~progress_driver() = default;
};

/// A waiter's way to its runtime's progress, closed by the runtime before it
/// goes: a thread waiting on a future while another destroys the runtime
/// then stops driving instead of entering a destroyed member.
class driver_link {
 public:
  /// `poll_for`: how long a waiter polls without yielding (session::poll_budget).
  driver_link(progress_driver* d, std::chrono::microseconds poll_for) : driver_(d), poll_for_(poll_for) {}
  /// How long a waiter polls without yielding now: `poll_for`, or zero
  /// while the machine is crowded (session::poll_without_yield).
  [[nodiscard]] std::chrono::microseconds poll_for() const { return session::poll_without_yield(poll_for_); }
  /// One turn of progress, unless closed or someone else drives.
  bool drive_once() {
    users_.fetch_add(1);  // seq_cst with close(): either we see closed_, or close() sees us
    const bool turned = !closed_.load() && driver_->drive_once();
    users_.fetch_sub(1);
    return turned;
  }
  /// The same for drive_or_sleep().
  bool drive_or_sleep(std::chrono::microseconds max) {
    users_.fetch_add(1);
    const bool turned = !closed_.load() && driver_->drive_or_sleep(max);
    users_.fetch_sub(1);
    return turned;
  }
  /// With more processes than cores, how long a waiter polls before it
  /// sleeps: waking a thread that sleeps costs 30-40 µs on this 2-core VM
  /// (docs/architecture.md), so while the recent waits were short (under
  /// kShortWait) it polls for up to twice their mean; after long ones, only
  /// kPollBeforeSleep — polling through a long wait takes a core from the
  /// processes that work on the call.
  [[nodiscard]] std::chrono::microseconds poll_before_sleep() const {
    const auto recent = std::chrono::microseconds(recent_wait_us_.load(std::memory_order_relaxed));
    if (recent >= kShortWait) return kPollBeforeSleep;
    return std::clamp(2 * recent, kPollBeforeSleep, kShortWait);
  }
  /// A waiter waited `took` for its answer (a moving mean, weight 1/4; a
  /// racy update loses at most one sample).
  void waited(std::chrono::microseconds took) {
    const auto us = static_cast<std::uint32_t>(std::min<std::int64_t>(took.count(), 1'000'000));
    const std::uint32_t old = recent_wait_us_.load(std::memory_order_relaxed);
    recent_wait_us_.store((old * 3 + us) / 4, std::memory_order_relaxed);
  }
  static constexpr std::chrono::microseconds kPollBeforeSleep{20};
  static constexpr std::chrono::microseconds kShortWait{75};
  [[nodiscard]] bool closed() const { return closed_.load(); }
  /// No drive_once() after this returns (waits for those in progress).
  void close() {
    closed_.store(true);
    while (users_.load() != 0) std::this_thread::yield();
  }

 private:
  progress_driver* driver_;
  std::chrono::microseconds poll_for_;
  std::atomic<bool> closed_{false};
  std::atomic<int> users_{0};
  std::atomic<std::uint32_t> recent_wait_us_{0};
};

/// How long a waiter polls when each process has a core, before it sleeps
/// on the transport between turns: a warm call never sleeps, and a cold
/// first call (ship + JIT, 2–16 ms here) pays at most one wake-up. It
/// yields the CPU now and then as it goes.
inline constexpr std::chrono::microseconds kDriveFor{2000};
/// A waiter that finds another thread driving waits this long for its
/// answer on a condition variable before it tries again.
inline constexpr std::chrono::microseconds kWaitForDriver{100};
/// A sleeping waiter wakes at least this often (and for every frame): a
/// runtime being destroyed waits for it to leave its member.
inline constexpr std::chrono::microseconds kSleepAtMost{10000};

/// Wait, driving `link`'s progress, until `ready()` or `deadline` (or the
/// link closes): poll first (a warm answer takes microseconds), then sleep
/// on the transport between turns: after kDriveFor while each process has
/// a core, after link.poll_before_sleep() when more processes than cores
/// share the machine or it is crowded by others — then a waiter for a
/// multi-hop walk leaves the cores to the processes doing it. When another
/// thread drives, `wait_for_driver(d)` blocks up to d for the answer (on a
/// condition variable its arrival notifies). Every waiter of the runtime
/// (a call's future, ferry_ifunc_wait) waits this way.
template <class Ready, class WaitForDriver>
void drive_until(driver_link& link, std::chrono::steady_clock::time_point deadline, Ready&& ready,
                 WaitForDriver&& wait_for_driver) {
  if (ready()) return;
  // With a core each, the clock is first read at the 64th turn (a warm
  // answer is usually in before: a clock read costs about 30 ns in this
  // VM), and `start` is that read, a few turns late.
  const bool oversubscribed = link.poll_for().count() == 0;
  std::optional<std::chrono::steady_clock::time_point> start;
  std::chrono::steady_clock::time_point poll_until{};
  auto started = [&](std::chrono::steady_clock::time_point now) {
    start = now;
    poll_until = now + (oversubscribed ? link.poll_before_sleep() : kDriveFor);
  };
  if (oversubscribed) started(std::chrono::steady_clock::now());
  bool sleep = false;
  for (unsigned turn = 1; !ready(); ++turn) {
    if (sleep) {
      if (link.closed()) break;
      const auto now = std::chrono::steady_clock::now();
      if (now > deadline) break;
      const auto left = std::chrono::duration_cast<std::chrono::microseconds>(deadline - now);
      // Another thread drives (and delivers our answer as it comes): wait
      // without spinning, then try to drive again.
      if (!link.drive_or_sleep(std::min(left, kSleepAtMost))) wait_for_driver(std::min(left, kWaitForDriver));
      continue;
    }
    // Someone else drives, or processes outnumber cores: let the others run.
    if (!link.drive_once() || (oversubscribed && !ready())) std::this_thread::yield();
    if (turn % (oversubscribed ? 1 : 64) == 0) {
      const auto now = std::chrono::steady_clock::now();
      if (!start) started(now);
      if (now > deadline) break;
      sleep = now > poll_until;
      // With a core for each process: pure polling at first (a warm answer
      // takes microseconds; a yield is a system call), then let other
      // processes on this core have their turn now and then.
      if (!oversubscribed && now - *start > link.poll_for()) std::this_thread::yield();
    }
  }
  // An answer in before the first clock read waited under a microsecond or two.
  link.waited(!start ? std::chrono::microseconds(1)
                     : std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - *start));
}

}  // namespace ferry::detail
