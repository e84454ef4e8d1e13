/* Not hostile unless asked: reads and writes five regions in turn — two
 * globals of the module, a stack array, the argument block and the result
 * block — `rounds` times, then reads 8 bytes at `address`. Arguments:
 * { u64 address; i64 rounds }; result: the sum of what it read (see
 * expected_probe_sum in test_jit_policy.cpp). With `address` outside the
 * call's memory, bounds checks end the call with memory_fault. */
#include <ferry/ferry.h>

static volatile int64_t first[8] = {1, 2, 3, 4, 5, 6, 7, 8};
static volatile int64_t second[8];

int32_t ferry_test_hostile_entry(ferry_context* cx, const void* args, void* result) {
  (void)cx;
  const volatile uint64_t* a = (const volatile uint64_t*)args;
  volatile int64_t* out = (volatile int64_t*)result;
  volatile int64_t local[8];
  const int64_t rounds = (int64_t)a[1];
  int64_t total = 0;
  *out = 0;
  for (int64_t r = 0; r < rounds; ++r) {
    const int i = (int)(r & 7);
    local[i] = r;
    second[i] = 2 * r;
    total += first[i] + local[i] + second[i] + (int64_t)a[1] + *out;
  }
  *out = total + *(const volatile int64_t*)(uintptr_t)a[0];
  return 0;
}
