/* Not hostile: what the bounds-check policy must still admit from clang:
 * a variable-length array in a loop (llvm.stacksave / llvm.stackrestore)
 * and a variadic function (llvm.va_start, va_copy, va_end). Returns
 * n + 6 for n in its argument block. */
#include <ferry/ferry.h>
#include <stdarg.h>

static __attribute__((noinline)) int64_t sum_of(int count, ...) {
  va_list list, again;
  va_start(list, count);
  va_copy(again, list);
  int64_t sum = 0;
  for (int i = 0; i < count; ++i) sum += va_arg(again, int64_t);
  va_end(again);
  va_end(list);
  return sum;
}

int32_t ferry_test_hostile_entry(ferry_context* cx, const void* args, void* result) {
  (void)cx;
  int64_t n = *(const volatile int64_t*)args, total = 0;
  for (int64_t k = 1; k <= n; ++k) {
    volatile int64_t row[k];
    for (int64_t i = 0; i < k; ++i) row[i] = 1;
    for (int64_t i = 0; i < k; ++i) total += row[i];
  }
  *(int64_t*)result = total * 2 / (n + 1) + sum_of(3, (int64_t)1, (int64_t)2, (int64_t)3);
  return 0;
}
