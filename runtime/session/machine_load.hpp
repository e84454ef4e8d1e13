// ⑥ The session's view of the machine it polls on: whether more threads
// want a CPU than it has cores, so that a waiting thread yields at once
// instead of polling a core another runnable thread needs.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string_view>

namespace ferry::session {

/// Whether this machine is crowded: more threads runnable than it has
/// cores, by the kernel's count (the fourth field of /proc/loadavg,
/// "runnable/total", the reading thread included). Members sample it as
/// they drive (member::tick(), every 64 turns, at most every kSamplePeriod);
/// their pollers read crowded().
///
/// Why: the processes of a cluster poll without yielding for a while when
/// each has a core (session::poll_budget). A process the cluster does not
/// count — a build, another job — can leave two of them on one core, where
/// each polls for its answer while the other, which would send it, waits
/// for the CPU. One busy process beside a 1-node chase on 2 cores cut
/// ferry's rate to 0.08-0.11x (shm) and 0.12-0.15x (tcp) of the
/// pre-deployed handler's at depth 1; yielding on a crowded machine made
/// it 2-3.5x (shm) and 5-7x (tcp) faster (docs/architecture.md, after
/// "Waiting").
///
/// Two samples in a row above the cores make it crowded (a moment's
/// extra thread — a heartbeat, a kernel worker — does not); one at or
/// below clears it: polling without yielding on a machine that is no
/// longer crowded costs every call a system call per idle turn (half the
/// rate of a 1-node chase here), while a crowded machine found clear for
/// a moment costs at most a sample period of polling. A thread that
/// yields is still runnable, so the pollers' yields do not clear it. A
/// sample is one pread() of /proc/loadavg, 1.7 µs here; without it the
/// machine stays clear. Thread-safe; one per process (process()), as the
/// machine is.
class machine_load {
 public:
  /// Compared with `cores`: the process's instance uses
  /// std::thread::hardware_concurrency(), as poll_budget() does.
  explicit machine_load(unsigned cores) : cores_(cores == 0 ? 1 : cores) {}
  machine_load(const machine_load&) = delete;
  machine_load& operator=(const machine_load&) = delete;
  ~machine_load();

  /// This process's instance.
  static machine_load& process();

  /// At `now`: read the kernel's count of runnable threads and observe()
  /// it, unless this instance read it less than kSamplePeriod ago. Any
  /// thread.
  void sample(std::chrono::steady_clock::time_point now);
  /// Take one count of runnable threads (sample() gives the kernel's).
  void observe(std::uint32_t runnable);
  /// More threads runnable than cores, by the last samples.
  [[nodiscard]] bool crowded() const { return crowded_.load(std::memory_order_relaxed); }

  static constexpr std::chrono::milliseconds kSamplePeriod{10};
  static constexpr unsigned kSamplesToCrowd = 2;

 private:
  const unsigned cores_;
  std::atomic<bool> crowded_{false};
  std::atomic<std::int64_t> last_sample_ns_{0};  // steady clock; 0: never sampled
  std::mutex mu_;                                 // guards the rest
  int fd_ = -1;                                   // /proc/loadavg, opened on the first sample
  bool unreadable_ = false;                       // it could not be opened or read: stay clear
  unsigned above_ = 0;                            // samples in a row above the cores
};

/// How long a waiting thread polls without yielding now: `configured`
/// (poll_budget() of the cluster's processes), or zero while this machine
/// is crowded (machine_load::process()). Every poller of the session asks
/// this: the progress thread and the callers waiting for their answers.
std::chrono::microseconds poll_without_yield(std::chrono::microseconds configured);

/// The runnable-thread count in the text of /proc/loadavg
/// ("0.52 0.58 0.59 3/467 12345" gives 3); nullopt unless the text has
/// that form.
std::optional<std::uint32_t> runnable_threads(std::string_view loadavg);

}  // namespace ferry::session
