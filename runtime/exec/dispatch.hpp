// ⑧ Where work on a node runs: the one statement of the policy.
//
//   mobile call whose code cannot block (it names neither ferry_invoke nor ferry_fetch), whose
//   last run took less than `inline_budget` and needed no store I/O (it
//   wrote to no persistent object)
//                          -> in place, on the thread that handled its frame
//                             (two thread hand-offs saved per call)
//   any other mobile call  -> an executor thread
//   object operations      -> an object thread: a pool of their own, never
//                             shared with mobile code (a persistent store
//                             fsyncs; store I/O never runs on the network
//                             thread, and runaway mobile calls filling every
//                             executor cannot hold up put/get/create/remove)
//
// Every run re-decides from its own duration, so code that turns long is
// moved to the executors after one long run. Zero `inline_budget` runs every
// call on an executor. The executors ("ferry-exec") and the object threads
// ("ferry-object") are two core::thread_pool_dispatchers.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include "code/loader.hpp"
#include "core/task_dispatcher.hpp"
#include "wire/frames.hpp"

namespace ferry::exec {

class dispatch_policy {
 public:
  dispatch_policy(unsigned executors, std::chrono::microseconds inline_budget, unsigned object_threads = 2)
      : budget_(inline_budget), executors_("ferry-exec", executors), object_threads_("ferry-object", object_threads) {}

  /// Run a mobile call of `code` on invoke frame `f`: `run(std::move(f))`,
  /// in place or on an executor.
  template <class Run>
  void call(const code::code_entry& code, wire::frame&& f, Run run) {
    if (code.run_inline.load(std::memory_order_relaxed)) {
      in_place_calls_.fetch_add(1, std::memory_order_relaxed);
      // A task of two references: making it allocates nothing.
      (void)in_place_.dispatch([&run, &f] { run(std::move(f)); });
      return;
    }
    executor_calls_.fetch_add(1, std::memory_order_relaxed);
    (void)executors_.dispatch([run, f = std::move(f)]() mutable { run(std::move(f)); });
  }
  /// Run an object operation or other store work (may block on I/O) on an
  /// object thread: never behind mobile code.
  void blocking(core::task run) { (void)object_threads_.dispatch(std::move(run)); }
  /// A call of `code` took `took`, and needed store I/O when it ended
  /// (`sealed`: it wrote through cx.local to a persistent object): decide
  /// where its next call runs. Code that seals runs on an executor: store I/O
  /// never runs on the network thread.
  void ran(code::code_entry& code, std::chrono::steady_clock::duration took, bool sealed) const {
    code.run_inline.store(!code.may_block && !sealed && took < budget_, std::memory_order_relaxed);
  }
  /// Stop the executors and the object threads (queued work is dropped).
  void shutdown() {
    executors_.shutdown();
    object_threads_.shutdown();
  }

  [[nodiscard]] std::uint64_t calls_in_place() const { return in_place_calls_.load(std::memory_order_relaxed); }
  [[nodiscard]] std::uint64_t calls_on_executor() const { return executor_calls_.load(std::memory_order_relaxed); }

 private:
  std::chrono::microseconds budget_;
  core::in_place_dispatcher in_place_;
  core::thread_pool_dispatcher executors_;
  core::thread_pool_dispatcher object_threads_;
  std::atomic<std::uint64_t> in_place_calls_{0}, executor_calls_{0};
};

}  // namespace ferry::exec
