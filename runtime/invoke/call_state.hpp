// ④ The caller's side of one call: the state a ferry::future waits on, and
// the link through which a waiting thread drives its runtime's progress.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <optional>
#include <span>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include <ferry/runtime.hpp>

#include "session/machine_load.hpp"
#include "transport/transport.hpp"

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
  static constexpr std::chrono::microseconds kShortWait{150};
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

class call_state {
 public:
  /// How long a waiter polls when each process has a core, before it
  /// sleeps on the transport between turns: a warm call never sleeps, and
  /// a cold first call (ship + JIT, 2–16 ms here) pays at most one wake-up.
  /// It yields the CPU now and then as it goes.
  static constexpr std::chrono::microseconds kDriveFor{2000};
  /// A waiter that finds another thread driving waits this long for its
  /// answer on the call's condition variable before it tries again.
  static constexpr std::chrono::microseconds kWaitForDriver{100};
  /// A sleeping waiter wakes at least this often (and for every frame):
  /// a runtime being destroyed waits for it to leave its member.
  static constexpr std::chrono::microseconds kSleepAtMost{10000};

  /// `answer_into`: where a successful answer's bytes go (it must be
  /// exactly that long, else the call fails with bad_format), instead of
  /// this state's own buffer: a bulk get's chunk lands in the caller's
  /// memory with one copy. Empty: the state's buffer.
  explicit call_state(std::chrono::steady_clock::time_point deadline, std::shared_ptr<driver_link> link = nullptr,
                      std::span<std::uint8_t> answer_into = {})
      : into_(answer_into), deadline_(deadline), link_(std::move(link)) {}

  /// The answer (calls::completion): copied into the caller's memory
  /// (answer_into), or else into this state's own buffer, which keeps its
  /// capacity when the state is reused.
  void on_answer(std::span<const std::uint8_t> bytes, status&& s) {
    {
      std::lock_guard lock(mu_);
      if (done_.load(std::memory_order_relaxed)) return;
      if (into_.empty() || !s.ok()) {
        bytes_.assign(bytes.begin(), bytes.end());
        status_ = std::move(s);
      } else if (bytes.size() != into_.size()) {
        status_ = make_error(errc::bad_format, fmt::format("asked for {} bytes, got {}", into_.size(), bytes.size()));
      } else {
        std::memcpy(into_.data(), bytes.data(), bytes.size());
        status_ = std::move(s);
      }
      done_.store(true, std::memory_order_release);
    }
    cv_.notify_all();
  }

  /// Wait until complete or the deadline; the bytes or the error.
  result<std::vector<std::uint8_t>> wait() {
    if (auto s = wait_done(); !s.ok()) return s;
    if (!status_.ok()) return status_;
    return bytes_;
  }
  /// Wait until complete or the deadline; a view of the bytes, valid while
  /// this state is held and not reused (no copy: a bulk transfer's chunks);
  /// with answer_into, a view of that memory, which holds them.
  result<std::span<const std::uint8_t>> wait_view() {
    if (auto s = wait_done(); !s.ok()) return s;
    if (!status_.ok()) return status_;
    if (!into_.empty()) return std::span<const std::uint8_t>(into_);
    return std::span<const std::uint8_t>(bytes_);
  }
  status wait_into(void* out, std::size_t size) {
    if (auto s = wait_done(); !s.ok()) return s;
    if (!status_.ok()) return status_;
    if (bytes_.size() != size) return make_error(errc::bad_format, "result size does not match the function's return type");
    if (size) std::memcpy(out, bytes_.data(), size);
    return {};
  }
  [[nodiscard]] bool ready() const noexcept { return done_.load(std::memory_order_acquire); }

  /// Where the call was sent and why: set by the invoking thread before its
  /// future exists, read through the future afterwards.
  placement_info& placed() { return placed_; }
  [[nodiscard]] const placement_info& placed() const { return placed_; }

  /// Make a finished state new again for another call (the runtime's pool
  /// does this only when nobody else holds the state).
  void reuse(std::chrono::steady_clock::time_point deadline, std::span<std::uint8_t> answer_into = {}) {
    std::lock_guard lock(mu_);
    done_.store(false, std::memory_order_relaxed);
    into_ = answer_into;
    bytes_.clear();
    // A bulk chunk's buffer stays for the next (warm memory), not the largest answer ever.
    if (bytes_.capacity() > transport::kReusedFrameBytes) std::vector<std::uint8_t>().swap(bytes_);
    status_ = status{};
    deadline_ = deadline;
    placed_.choice = placement_info::how::owner;
    placed_.automatic = false;
    placed_.reason.clear();  // keeps its capacity
    placed_.estimate_us = placed_.owner_estimate_us = 0;
  }

 private:
  status wait_done() {
    if (link_ && !ready()) {
      // Poll first (a warm answer takes microseconds), then sleep on the
      // transport between turns until the answer or the deadline: after
      // kDriveFor while each process has a core, after poll_before_sleep()
      // when more processes than cores share the machine or it is crowded
      // by others — then a caller waiting for a multi-hop walk leaves the
      // cores to the nodes doing it.
      // With a core each, the clock is first read at the 64th turn (a warm
      // answer is usually in before: a clock read costs about 30 ns in this
      // VM), and `start` is that read, a few turns late.
      const bool oversubscribed = link_->poll_for().count() == 0;
      std::optional<std::chrono::steady_clock::time_point> start;
      std::chrono::steady_clock::time_point poll_until{};
      auto started = [&](std::chrono::steady_clock::time_point now) {
        start = now;
        poll_until = now + (oversubscribed ? link_->poll_before_sleep() : kDriveFor);
      };
      if (oversubscribed) started(std::chrono::steady_clock::now());
      bool sleep = false;
      for (unsigned turn = 1; !ready(); ++turn) {
        if (sleep) {
          if (link_->closed()) break;
          const auto now = std::chrono::steady_clock::now();
          if (now > deadline_) break;
          const auto left = std::chrono::duration_cast<std::chrono::microseconds>(deadline_ - now);
          if (!link_->drive_or_sleep(std::min(left, kSleepAtMost))) {
            // Another thread drives (and delivers our answer as it comes):
            // wait without spinning, then try to drive again.
            std::unique_lock lock(mu_);
            cv_.wait_for(lock, kWaitForDriver, [&] { return done_.load(std::memory_order_relaxed); });
          }
          continue;
        }
        // Someone else drives, or processes outnumber cores: let the others run.
        if (!link_->drive_once() || (oversubscribed && !ready())) std::this_thread::yield();
        if (turn % (oversubscribed ? 1 : 64) == 0) {
          const auto now = std::chrono::steady_clock::now();
          if (!start) started(now);
          if (now > deadline_) break;
          sleep = now > poll_until;
          // With a core for each process: pure polling at first (a warm
          // answer takes microseconds; a yield is a system call), then let
          // other processes on this core have their turn now and then.
          if (!oversubscribed && now - *start > link_->poll_for()) std::this_thread::yield();
        }
      }
      // An answer in before the first clock read waited under a microsecond or two.
      link_->waited(!start ? std::chrono::microseconds(1)
                           : std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - *start));
    }
    if (ready()) return {};  // done_ is released after the answer is written: no lock needed to read it
    std::unique_lock lock(mu_);
    if (!cv_.wait_until(lock, deadline_, [&] { return done_.load(std::memory_order_relaxed); })) {
      into_ = {};  // the caller gives up on its memory: an answer that comes late goes to this state's buffer
      return make_error(errc::timeout, "no answer before the call's deadline");
    }
    return {};
  }

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<bool> done_{false};
  std::vector<std::uint8_t> bytes_;
  std::span<std::uint8_t> into_;  // answer_into; emptied when the caller gives up
  status status_;
  std::chrono::steady_clock::time_point deadline_;
  std::shared_ptr<driver_link> link_;
  placement_info placed_;
};

}  // namespace ferry::detail
