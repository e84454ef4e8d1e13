// ⑧ Where work on a node runs: the one statement of the policy.
//
//   mobile call whose code cannot block (it never names ferry_invoke) and
//   whose last run took less than `inline_budget`
//                          -> in place, on the thread that handled its frame
//                             (two thread hand-offs saved per call)
//   any other mobile call  -> an executor thread
//   object operations      -> an executor thread (a persistent store fsyncs;
//                             store I/O never runs on the network thread)
//
// Every run re-decides from its own duration, so code that turns long is
// moved to the executors after one long run. Zero `inline_budget` runs every
// call on an executor. The executors are a core::thread_pool_dispatcher.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include "code/loader.hpp"
#include "core/task_dispatcher.hpp"

namespace ferry::exec {

class dispatch_policy {
 public:
  dispatch_policy(unsigned executors, std::chrono::microseconds inline_budget)
      : budget_(inline_budget), executors_("ferry-exec", executors) {}

  /// Run a mobile call of `code`: `run` in place or on an executor.
  void call(const code::code_entry& code, core::task run);
  /// Run work that may block (store I/O) on an executor.
  void blocking(core::task run) { (void)executors_.dispatch(std::move(run)); }
  /// A call of `code` took `took`: decide where its next call runs.
  void ran(code::code_entry& code, std::chrono::steady_clock::duration took) const {
    code.run_inline.store(!code.may_block && took < budget_, std::memory_order_relaxed);
  }
  /// Stop the executors (queued work is dropped).
  void shutdown() { executors_.shutdown(); }

  [[nodiscard]] std::uint64_t calls_in_place() const { return in_place_calls_.load(std::memory_order_relaxed); }
  [[nodiscard]] std::uint64_t calls_on_executor() const { return executor_calls_.load(std::memory_order_relaxed); }

 private:
  std::chrono::microseconds budget_;
  core::in_place_dispatcher in_place_;
  core::thread_pool_dispatcher executors_;
  std::atomic<std::uint64_t> in_place_calls_{0}, executor_calls_{0};
};

}  // namespace ferry::exec
