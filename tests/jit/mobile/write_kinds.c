/* Reads and writes `count` 64-bit words at `dst` in one of the ways checked
 * code writes memory, to show that a write is admitted only where the call
 * may write (ferry_bounds_write) while a read is admitted wherever it may
 * read. Arguments: { u64 dst; u64 src; u64 count; u64 mode }; result: the
 * sum of the words read, or of `dst`'s words after the write.
 * Mode 0: read dst (a loop: hoisted at the optimized tier). 1: store i into
 * each word of dst (a loop: hoisted). 2: store 5 into dst's word at the
 * index read from src[0] (one store, its address from memory: checked
 * where it is). 3: memset dst (the intrinsic). 4: memcpy src to dst (the
 * intrinsic: dst written, src read). 5: an atomic add to dst's first word.
 * 6: add 1 to each word of dst (a read and a write of each word through
 * one pointer). 7: dst[i] = src[i] * 3 + 1 (a loop: a read region and a
 * write region, each hoisted, each in its own slot). 8: frexp's exponent
 * into dst's first word (libc writing through a pointer). */
#include <ferry/ferry.h>

#include <math.h>
#include <string.h>

int32_t ferry_test_hostile_entry(ferry_context* cx, const void* args, void* result) {
  (void)cx;
  const uint64_t* a = (const uint64_t*)args;
  int64_t* dst = (int64_t*)(uintptr_t)a[0];
  const int64_t* src = (const int64_t*)(uintptr_t)a[1];
  const uint64_t n = a[2];
  int64_t total = 0;
  switch (a[3]) {
    case 0:
      for (uint64_t i = 0; i < n; ++i) total += dst[i];
      *(int64_t*)result = total;
      return 0;
    case 1:
      for (uint64_t i = 0; i < n; ++i) dst[i] = (int64_t)i;
      break;
    case 2: dst[src[0]] = 5; break;
    case 3: memset(dst, 0, n * sizeof *dst); break;
    case 4: memcpy(dst, src, n * sizeof *dst); break;
    case 5: __atomic_fetch_add(dst, 1, __ATOMIC_SEQ_CST); break;
    case 6:
      for (uint64_t i = 0; i < n; ++i) dst[i] += 1;
      break;
    case 7:
      for (uint64_t i = 0; i < n; ++i) dst[i] = src[i] * 3 + 1;
      break;
    case 8:
      (void)frexp((double)n, (int*)dst);
      *(int64_t*)result = *(const int*)dst;
      return 0;
    default: return 1;
  }
  for (uint64_t i = 0; i < n; ++i) total += dst[i];
  *(int64_t*)result = total;
  return 0;
}
