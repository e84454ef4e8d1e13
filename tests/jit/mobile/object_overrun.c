/* Hostile unless its index is in range: reads or writes word `index` of a
 * local array of 8 words, or reads word `index` of a global of 8 words.
 * Arguments: { i64 index; u64 mode } (mode 0: read the local, 1: write
 * it, 2: read the global); result: the word read, or the local array's sum
 * after the write. An index outside [0, 8) names memory the call may
 * touch (its stack below and above the array, the module's other global)
 * but not that array: bounds checks end the call with memory_fault. */
#include <ferry/ferry.h>

static volatile int64_t table[8] = {10, 11, 12, 13, 14, 15, 16, 17};
static volatile int64_t other[8] = {20, 21, 22, 23, 24, 25, 26, 27};

int32_t ferry_test_hostile_entry(ferry_context* cx, const void* args, void* result) {
  (void)cx;
  const volatile int64_t* a = (const volatile int64_t*)args;
  volatile int64_t below[8], local[8], above[8];
  for (int i = 0; i < 8; ++i) {
    below[i] = 30 + i;
    local[i] = i;
    above[i] = 40 + i;
  }
  const int64_t index = a[0];
  int64_t out = 0;
  if (a[1] == 0) {
    out = local[index];
  } else if (a[1] == 1) {
    local[index] = 100;
    for (int i = 0; i < 8; ++i) out += local[i];
  } else {
    out = table[index] + other[0] - other[0];
  }
  out += below[0] - below[0] + above[0] - above[0];
  *(int64_t*)result = out;
  return 0;
}
