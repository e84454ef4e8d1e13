#include "machine_load.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <charconv>
#include <thread>

namespace ferry::session {

machine_load::~machine_load() {
  if (fd_ >= 0) ::close(fd_);
}

machine_load& machine_load::process() {
  static machine_load load(std::thread::hardware_concurrency());
  return load;
}

void machine_load::sample(std::chrono::steady_clock::time_point now) {
  const std::int64_t ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
  std::int64_t last = last_sample_ns_.load(std::memory_order_relaxed);
  if (last != 0 && ns - last < std::chrono::nanoseconds(kSamplePeriod).count()) return;
  // One thread samples; the others, due at the same moment, leave it to it.
  if (!last_sample_ns_.compare_exchange_strong(last, ns, std::memory_order_relaxed)) return;
  std::optional<std::uint32_t> runnable;
  {
    std::lock_guard lock(mu_);
    if (unreadable_) return;
    if (fd_ < 0) fd_ = ::open("/proc/loadavg", O_RDONLY | O_CLOEXEC);
    char text[128];
    const ssize_t n = fd_ < 0 ? -1 : ::pread(fd_, text, sizeof text, 0);
    if (n > 0) runnable = runnable_threads({text, static_cast<std::size_t>(n)});
    if (!runnable) {
      unreadable_ = true;  // no /proc, or a form this code does not know: polling stays as configured
      return;
    }
  }
  observe(*runnable);
}

void machine_load::observe(std::uint32_t runnable) {
  std::lock_guard lock(mu_);
  above_ = runnable > cores_ ? above_ + 1 : 0;
  crowded_.store(above_ >= kSamplesToCrowd, std::memory_order_relaxed);
}

std::chrono::microseconds poll_without_yield(std::chrono::microseconds configured) {
  return machine_load::process().crowded() ? std::chrono::microseconds(0) : configured;
}

std::optional<std::uint32_t> runnable_threads(std::string_view loadavg) {
  // Three load averages, then "runnable/total".
  std::size_t at = 0;
  for (int field = 0; field < 3; ++field) {
    at = loadavg.find(' ', at);
    if (at == std::string_view::npos) return std::nullopt;
    ++at;
  }
  std::uint32_t runnable = 0;
  const char* first = loadavg.data() + at;
  const char* last = loadavg.data() + loadavg.size();
  const auto [end, ec] = std::from_chars(first, last, runnable);
  if (ec != std::errc{} || end == first || end == last || *end != '/') return std::nullopt;
  return runnable;
}

}  // namespace ferry::session
