// ⑧ Where work on a node runs: the one statement of the policy.
//
//   mobile call whose code cannot block (it names none of ferry_invoke, ferry_fetch, ferry_migrate), whose
//   last run took less than `inline_budget` and needed no store I/O (it
//   wrote to no persistent object)
//                          -> in place, on the thread that handled its frame
//                             (two thread hand-offs saved per call)
//   any other mobile call  -> an executor thread (so is every call placement
//                             sent here to run on pulled data: it waits for
//                             its pulls)
//   ifunc message (<ferry/ifunc.h>, ifunc/service.cpp) -> the same rule with
//                             the ifunc's own verdict: in place when its code
//                             is registered here already, its last NAME_main
//                             took less than `inline_budget` and it wrote to
//                             no persistent object; else an executor (so is
//                             every message that registers shipped code: a
//                             compile)
//   object operations      -> an object thread: a pool of their own, never
//                             shared with mobile code (a persistent store
//                             fsyncs; store I/O never runs on the network
//                             thread, and runaway mobile calls filling every
//                             executor cannot hold up put/get/create/remove)
//
// Every run re-decides from its own duration, so code that turns long is
// moved to the executors after one long run (which keeps sending the node's
// heartbeats meanwhile: exec::keep_beating). Zero `inline_budget` runs every
// call on an executor. The executors ("ferry-exec") and the object threads
// ("ferry-object") are two core::thread_pool_dispatchers. The policy also
// keeps the figures a node's heartbeats report (load(): calls waiting and
// running, their mean run time), which automatic placement reads.
#pragma once

#include <algorithm>
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
      : budget_(inline_budget),
        executor_threads_(std::max(1u, executors)),
        executors_("ferry-exec", executors),
        object_threads_("ferry-object", object_threads) {}

  /// Run a mobile call of `code` on invoke frame `f`: `run(std::move(f))`,
  /// in place or on an executor.
  template <class Run>
  void call(const code::code_entry& code, wire::frame&& f, Run run) {
    // A call placement sent here on pulled data waits for its pulls: never in place.
    const bool pulls = std::get<wire::invoke_body>(f.body).flags & wire::kInvokePull;
    if (in_place(code.run_inline, !pulls)) {
      // A task of two references: making it allocates nothing.
      (void)in_place_.dispatch([&run, &f] { run(std::move(f)); });
      return;
    }
    to_executor([run, f = std::move(f)]() mutable { run(std::move(f)); });
  }
  /// Run other mobile code whose verdict is `run_inline` (an ifunc's
  /// NAME_main, ifunc/service.cpp): `run()` in place when the verdict says
  /// so and `may_run_inline` (its code is resident, nothing to compile),
  /// else on an executor; counted like a call either way.
  template <class Run>
  void run_code(const std::atomic<bool>& run_inline, bool may_run_inline, Run task) {
    if (in_place(run_inline, may_run_inline)) {
      (void)in_place_.dispatch([&task] { task(); });
      return;
    }
    to_executor(std::move(task));
  }
  /// Run an object operation or other store work (may block on I/O) on an
  /// object thread: never behind mobile code.
  void blocking(core::task run) { (void)object_threads_.dispatch(std::move(run)); }
  /// A call of `code` took `took`, and needed store I/O when it ended
  /// (`sealed`: it wrote through cx.local to a persistent object): decide
  /// where its next call runs.
  void ran(code::code_entry& code, std::chrono::steady_clock::duration took, bool sealed) {
    ran(code.run_inline, code.may_block, took, sealed);
  }
  /// Mobile code whose verdict is `run_inline` (it `may_block`: it waits for
  /// other nodes) ran for `took` and needed store I/O when it ended
  /// (`sealed`): decide where it runs next. Code that seals runs on an
  /// executor: store I/O never runs on the network thread.
  void ran(std::atomic<bool>& run_inline, bool may_block, std::chrono::steady_clock::duration took, bool sealed) {
    run_inline.store(!may_block && !sealed && took < budget_, std::memory_order_relaxed);
    // The mean run time placement reads (an exponential average, weight 1/8;
    // a racy update loses at most one sample).
    const auto us = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(took).count());
    const std::uint64_t old = call_us_.load(std::memory_order_relaxed);
    call_us_.store(old == 0 ? us + 1 : (old * 7 + us + 1) / 8, std::memory_order_relaxed);
    calls_.fetch_add(1, std::memory_order_relaxed);
  }
  /// Stop the executors and the object threads (queued work is dropped).
  void shutdown() {
    executors_.shutdown();
    object_threads_.shutdown();
  }

  /// This node's load as its heartbeats report it (wire::load_body; the
  /// pulled-data counters are the runner's).
  [[nodiscard]] wire::load_body load() const {
    wire::load_body b;
    b.queued = static_cast<std::uint32_t>(queued_.load(std::memory_order_relaxed));
    b.running = static_cast<std::uint32_t>(running_.load(std::memory_order_relaxed));
    b.executors = executor_threads_;
    b.call_us = static_cast<std::uint32_t>(std::min<std::uint64_t>(call_us_.load(std::memory_order_relaxed), UINT32_MAX));
    b.calls = calls_.load(std::memory_order_relaxed);
    return b;
  }

  [[nodiscard]] std::uint64_t calls_in_place() const { return in_place_calls_.load(std::memory_order_relaxed); }
  [[nodiscard]] std::uint64_t calls_on_executor() const { return executor_calls_.load(std::memory_order_relaxed); }

 private:
  // The verdict: in place (counted) or not.
  bool in_place(const std::atomic<bool>& run_inline, bool may_run_inline) {
    if (!may_run_inline || !run_inline.load(std::memory_order_relaxed)) return false;
    in_place_calls_.fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  // Counted as queued, then running (load()).
  template <class Run>
  void to_executor(Run task) {
    executor_calls_.fetch_add(1, std::memory_order_relaxed);
    queued_.fetch_add(1, std::memory_order_relaxed);
    (void)executors_.dispatch([this, task = std::move(task)]() mutable {
      queued_.fetch_sub(1, std::memory_order_relaxed);
      running_.fetch_add(1, std::memory_order_relaxed);
      task();
      running_.fetch_sub(1, std::memory_order_relaxed);
    });
  }

  std::chrono::microseconds budget_;
  std::uint32_t executor_threads_;
  core::in_place_dispatcher in_place_;
  core::thread_pool_dispatcher executors_;
  core::thread_pool_dispatcher object_threads_;
  std::atomic<std::uint64_t> in_place_calls_{0}, executor_calls_{0};
  std::atomic<std::int64_t> queued_{0}, running_{0};  // executor calls waiting, running
  std::atomic<std::uint64_t> call_us_{0};              // mean run time + 1 (0: no call yet)
  std::atomic<std::uint64_t> calls_{0};
};

}  // namespace ferry::exec
