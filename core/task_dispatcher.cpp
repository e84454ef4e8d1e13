#include "core/task_dispatcher.hpp"

#include <algorithm>

#include <pthread.h>

namespace ferry::core {

bool in_place_dispatcher::dispatch(task t) {
  t();
  return true;
}

thread_pool_dispatcher::thread_pool_dispatcher(std::string name, unsigned threads) {
  name.resize(std::min<std::size_t>(name.size(), 15));  // the kernel's limit
  for (unsigned i = 0; i < std::max(1u, threads); ++i) {
    threads_.emplace_back([this] { run(); });
    ::pthread_setname_np(threads_.back().native_handle(), name.c_str());
  }
}

thread_pool_dispatcher::~thread_pool_dispatcher() { shutdown(); }

bool thread_pool_dispatcher::dispatch(task t) {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return false;
    queue_.push_back(std::move(t));
  }
  cv_.notify_one();
  return true;
}

void thread_pool_dispatcher::shutdown() {
  std::deque<task> dropped;  // destroyed outside the lock: captures may dispatch
  {
    std::lock_guard lock(mu_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
    dropped.swap(queue_);
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

void thread_pool_dispatcher::run() {
  for (;;) {
    task t;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      t = std::move(queue_.front());
      queue_.pop_front();
    }
    t();
  }
}

}  // namespace ferry::core
