// Rule [ferry-thread-local]: the executing thread belongs to the runtime.
#include <ferry/ferry.hpp>

thread_local int calls = 0;

[[ferry::mobile]] int count(ferry::context&) {
  return ++calls;  // expected-error {{[ferry-thread-local] ferry::mobile function 'count' uses thread_local variable 'calls'}}
}
