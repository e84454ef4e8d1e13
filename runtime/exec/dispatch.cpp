#include "exec/dispatch.hpp"

namespace ferry::exec {

void dispatch_policy::call(const code::code_entry& code, core::task run) {
  if (code.run_inline.load(std::memory_order_relaxed)) {
    in_place_calls_.fetch_add(1, std::memory_order_relaxed);
    (void)in_place_.dispatch(std::move(run));
    return;
  }
  executor_calls_.fetch_add(1, std::memory_order_relaxed);
  (void)executors_.dispatch(std::move(run));
}

}  // namespace ferry::exec
