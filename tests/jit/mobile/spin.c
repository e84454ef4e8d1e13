/* Signals that it runs, then waits until released: lets a test unload the
 * code object while a call is inside it. */
#include <ferry/ferry.h>

struct spin_args { int* started; int* release; };

int32_t ferry_test_spin_entry(ferry_context* cx, const void* args, void* result) {
  (void)cx;
  const struct spin_args* a = (const struct spin_args*)args;
  __atomic_store_n(a->started, 1, __ATOMIC_RELEASE);
  while (!__atomic_load_n(a->release, __ATOMIC_ACQUIRE)) {
  }
  *(int32_t*)result = 42;
  return 0;
}
