// One object per thread and use, lent to each call on that thread in turn, so
// that its buffers keep their capacity and a warm call allocates nothing (a
// send's frame, an encode buffer). A call that borrows it while an outer call
// on the same thread still holds it (work a send drains first may send
// again) gets an object of its own, made from the same blank.
#pragma once

#include <optional>
#include <utility>

namespace ferry::core {

/// `Use` tells apart borrowers of the same type (a tag type per call site).
template <class T, class Use>
class thread_reused {
 public:
  /// `blank`: what this thread's object starts as, and a nested borrower's.
  explicit thread_reused(const T& blank) : kept_(slot(blank)), mine_(!kept_.lent) {
    if (mine_) kept_.lent = true;
    else own_.emplace(blank);
  }
  ~thread_reused() {
    if (mine_) kept_.lent = false;
  }
  thread_reused(const thread_reused&) = delete;
  thread_reused& operator=(const thread_reused&) = delete;

  T& operator*() { return mine_ ? kept_.value : *own_; }
  T* operator->() { return &**this; }

 private:
  struct kept {
    T value;
    bool lent = false;
  };
  static kept& slot(const T& blank) {
    thread_local kept k{blank};
    return k;
  }
  kept& kept_;
  bool mine_;
  std::optional<T> own_;
};

}  // namespace ferry::core
