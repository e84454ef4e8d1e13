// ⑧ Where a piece of mobile code's next run goes — in place on the thread
// that handled its frame, or on an executor: the dispatch policy's verdict
// from its last runs (dispatch_policy::ran(), runtime/exec/dispatch.hpp),
// kept with the code (code::code_entry, an ifunc's registry entry).
#pragma once

#include <atomic>

namespace ferry::exec {

class run_verdict {
 public:
  /// The next run may go in place.
  [[nodiscard]] bool in_place() const noexcept { return in_place_.load(std::memory_order_relaxed); }

 private:
  friend class dispatch_policy;
  std::atomic<bool> in_place_{false};  // a new piece of code's first run goes to an executor
  std::atomic<bool> forgiven_{false};  // the last run passed the budget and was let off
};

}  // namespace ferry::exec
