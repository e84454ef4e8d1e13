// ④ The caller's side of one call: the state a ferry::future waits on
// (while it waits, the thread drives its runtime's progress:
// session/driving.hpp).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <span>
#include <vector>

#include <fmt/format.h>

#include <ferry/runtime.hpp>

#include "session/driving.hpp"
#include "transport/transport.hpp"

namespace ferry::detail {

/// One call's completion: its answer or error, and the wait for it.
class call_state {
 public:
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
    if (link_)
      drive_until(*link_, deadline_, [&] { return ready(); }, [&](std::chrono::microseconds d) {
        std::unique_lock lock(mu_);
        cv_.wait_for(lock, d, [&] { return done_.load(std::memory_order_relaxed); });
      });
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
