/* Hostile: inline asm (a raw syscall would look the same to the JIT). */
#include <ferry/ferry.h>

int32_t ferry_test_hostile_entry(ferry_context* cx, const void* args, void* result) {
  (void)cx, (void)args;
  int32_t v = 1;
  __asm__ volatile("" : "+r"(v));
  *(int32_t*)result = v;
  return 0;
}
