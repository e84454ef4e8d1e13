// Where work runs: one interface, two implementations (the shape of ORC's
// TaskDispatcher). Every stage that hands work to another thread — JIT
// compiles and tier-ups, object operations and mobile calls on a node —
// dispatches through one of these instead of keeping its own queue and
// threads.
//
//   in_place_dispatcher     runs the task on the calling thread, now
//   thread_pool_dispatcher  queues it for a fixed set of named threads
//
// The choice between them for a mobile call (run where the frame arrived,
// or on an executor) is a policy stated once, in runtime/exec/dispatch.hpp.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace ferry::core {

using task = std::function<void()>;

class task_dispatcher {
 public:
  virtual ~task_dispatcher() = default;
  /// Run `t` (now or later). False if the dispatcher has shut down: `t` was
  /// dropped without running, and the caller answers for it.
  virtual bool dispatch(task t) = 0;
  /// Stop taking tasks, drop the queued ones, and wait for running ones.
  /// Not from one of the dispatcher's own tasks.
  virtual void shutdown() = 0;
};

/// Runs each task on the thread that dispatches it.
class in_place_dispatcher final : public task_dispatcher {
 public:
  bool dispatch(task t) override;
  void shutdown() override {}
};

/// A fixed pool of threads taking tasks in FIFO order.
class thread_pool_dispatcher final : public task_dispatcher {
 public:
  /// Starts `threads` threads (at least one), named `name` (shown by top -H
  /// and gdb; at most 15 characters are kept).
  thread_pool_dispatcher(std::string name, unsigned threads);
  ~thread_pool_dispatcher() override;
  thread_pool_dispatcher(const thread_pool_dispatcher&) = delete;
  thread_pool_dispatcher& operator=(const thread_pool_dispatcher&) = delete;

  bool dispatch(task t) override;
  void shutdown() override;

 private:
  void run();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<task> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace ferry::core
