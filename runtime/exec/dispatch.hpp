// ⑧ Where work on a node runs: the one statement of the policy.
//
//   mobile call whose code cannot block (it names none of ferry_invoke, ferry_fetch, ferry_migrate), whose
//   last run took less than `inline_budget` (or, once after a run under
//   it, ran in place, did not fail and took less than kLongRun budgets)
//   and needed no store I/O (it wrote to no persistent object)
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
//   but a put of at most a chunk (kReusedFrameBytes) to an object in
//   memory, not moving  -> in place, written from the transport's buffer
//                             (object_service::put_in_place: a memory copy,
//                             like a short call; no decode copy, no hand-off)
//   a part of a move's image, at its destination
//                          -> in place, copied from the transport's buffer
//                             into the image being assembled (tens of µs);
//                             the whole image, on a node whose pending
//                             images are in memory, checked and kept as
//                             pending in place too (migration::images_in_place:
//                             a check, no copy); on a persistent node, an
//                             object thread writes it into its file
//   a move, at its source -> a mover thread (kMoverThreads of their own):
//                             its drain waits for the calls on the object
//                             (up to 5 s) and its copy and commit for the
//                             destination's answers (up to 30 s), which on
//                             an object thread held up every object
//                             operation of the node once two moves waited
//                             (object/migration.hpp); its image's parts
//                             leave from the network thread as answers
//                             come; the destination's other steps are
//                             store work: object threads
//
// Every run re-decides from its own duration: code that turns long is moved
// to the executors after two runs in a row over `inline_budget`, or after
// one that failed over it or lasted kLongRun budgets (a long run keeps
// sending the node's heartbeats meanwhile: exec::keep_beating). A single
// run over the budget but under kLongRun is let off once: on a busy core
// the scheduler can stretch a short run's wall time to tens of ms, and one
// such run must not send the next call behind the executors' queue (seen:
// an automatic placement's one measuring call to a saturated owner waited
// 0.57 s there, so the owner looked slow for a second). Zero
// `inline_budget` runs every call on an executor. The executors ("ferry-exec"), the object threads
// ("ferry-object") and the movers ("ferry-move") are core::thread_pool_dispatchers. The policy also
// keeps the figures a node's heartbeats report (load(): calls waiting and
// running, their mean run time), which automatic placement reads.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>

#include "code/loader.hpp"
#include "core/task_dispatcher.hpp"
#include "exec/run_verdict.hpp"
#include "wire/frames.hpp"

namespace ferry::exec {

class dispatch_policy {
 public:
  dispatch_policy(unsigned executors, std::chrono::microseconds inline_budget, unsigned object_threads = 2)
      : budget_(inline_budget),
        executor_threads_(std::max(1u, executors)),
        executors_("ferry-exec", executors),
        object_threads_("ferry-object", object_threads),
        movers_("ferry-move", kMoverThreads) {}

  /// Run a mobile call of `code` on invoke frame `f`: `run(std::move(f))`,
  /// in place or on an executor.
  template <class Run>
  void call(const code::code_entry& code, wire::frame&& f, Run run) {
    // A call placement sent here on pulled data waits for its pulls: never in place.
    const bool pulls = std::get<wire::invoke_body>(f.body).flags & wire::kInvokePull;
    if (in_place(code.verdict, !pulls)) {
      // A task of two references: making it allocates nothing.
      (void)in_place_.dispatch([&run, &f] { run(std::move(f)); });
      return;
    }
    to_executor([run, f = std::move(f)]() mutable { run(std::move(f)); });
  }
  /// Run other mobile code whose verdict is `verdict` (an ifunc's
  /// NAME_main, ifunc/service.cpp): `run()` in place when the verdict says
  /// so and `may_run_inline` (its code is resident, nothing to compile),
  /// else on an executor; counted like a call either way.
  template <class Run>
  void run_code(const run_verdict& verdict, bool may_run_inline, Run task) {
    if (in_place(verdict, may_run_inline)) {
      (void)in_place_.dispatch([&task] { task(); });
      return;
    }
    to_executor(std::move(task));
  }
  /// Run an object operation or other store work (may block on I/O) on an
  /// object thread: never behind mobile code.
  void blocking(core::task run) { (void)object_threads_.dispatch(std::move(run)); }
  /// Run the source's side of a move (it waits: for the calls on the
  /// object, for the destination) on a mover thread.
  void move_work(core::task run) { (void)movers_.dispatch(std::move(run)); }
  /// How a run of mobile code went, as the policy weighs it.
  struct run_outcome {
    std::chrono::steady_clock::duration took;
    bool sealed = false;  ///< it needed store I/O when it ended (wrote through cx.local to a persistent object)
    bool failed = false;  ///< it ended in an error (a fault, its fuel or deadline used up): never let off
  };
  /// A call of `code` ran: decide where its next call runs.
  void ran(code::code_entry& code, const run_outcome& run) { ran(code.verdict, code.may_block, run); }
  /// Mobile code whose verdict is `verdict` (it `may_block`: it waits for
  /// other nodes) ran: decide where it runs next. Code that seals runs on an
  /// executor: store I/O never runs on the network thread.
  void ran(run_verdict& verdict, bool may_block, const run_outcome& run) {
    verdict.in_place_.store(next_in_place(verdict, may_block || run.sealed, run.took, run.failed),
                            std::memory_order_relaxed);
    // The mean run time placement reads (an exponential average, weight 1/8;
    // a racy update loses at most one sample).
    const auto us = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(run.took).count());
    const std::uint64_t old = call_us_.load(std::memory_order_relaxed);
    call_us_.store(old == 0 ? us + 1 : (old * 7 + us + 1) / 8, std::memory_order_relaxed);
    calls_.fetch_add(1, std::memory_order_relaxed);
  }
  /// Stop the executors, the object threads and the movers (queued work is dropped).
  void shutdown() {
    executors_.shutdown();
    object_threads_.shutdown();
    movers_.shutdown();
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

  /// Held while a call on an executor waits for another node's answer (a
  /// nested call, a fetch): meanwhile it holds no core (computing()).
  class waiting {
   public:
    explicit waiting(dispatch_policy& p) : p_(p) { p_.waiting_.fetch_add(1, std::memory_order_relaxed); }
    ~waiting() { p_.waiting_.fetch_sub(1, std::memory_order_relaxed); }
    waiting(const waiting&) = delete;
    waiting& operator=(const waiting&) = delete;

   private:
    dispatch_policy& p_;
  };
  /// Calls on executors that hold a core now: running, not waiting.
  [[nodiscard]] std::int64_t computing() const {
    return running_.load(std::memory_order_relaxed) - waiting_.load(std::memory_order_relaxed);
  }
  [[nodiscard]] std::uint64_t calls_in_place() const { return in_place_calls_.load(std::memory_order_relaxed); }
  [[nodiscard]] std::uint64_t calls_on_executor() const { return executor_calls_.load(std::memory_order_relaxed); }

 private:
  /// A run this many budgets long moves its code to the executors at once.
  static constexpr int kLongRun = 100;
  /// Moves a node's movers run at once (more wait in their queue).
  static constexpr unsigned kMoverThreads = 2;

  // The verdict after a run of `took` (`never`: it may block or it sealed;
  // `failed`: it ended in an error).
  bool next_in_place(run_verdict& v, bool never, std::chrono::steady_clock::duration took, bool failed) {
    if (never) return false;
    if (took < budget_) {
      v.forgiven_.store(false, std::memory_order_relaxed);
      return true;
    }
    // Over the budget: let a run in place off once, unless it was very long
    // or failed (a runaway stopped by its fuel is no stretched short run).
    const bool let_off = v.in_place() && !failed && took < kLongRun * budget_ &&
                         !v.forgiven_.load(std::memory_order_relaxed);
    v.forgiven_.store(let_off, std::memory_order_relaxed);
    return let_off;
  }
  // The verdict: in place (counted) or not.
  bool in_place(const run_verdict& verdict, bool may_run_inline) {
    if (!may_run_inline || !verdict.in_place()) return false;
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
  core::thread_pool_dispatcher movers_;
  std::atomic<std::uint64_t> in_place_calls_{0}, executor_calls_{0};
  std::atomic<std::int64_t> queued_{0}, running_{0};  // executor calls queued, running
  std::atomic<std::int64_t> waiting_{0};              // running calls waiting for another node (waiting)
  std::atomic<std::uint64_t> call_us_{0};              // mean run time + 1 (0: no call yet)
  std::atomic<std::uint64_t> calls_{0};
};

}  // namespace ferry::exec
