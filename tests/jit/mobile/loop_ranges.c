/* Loops over `count` 64-bit words from `address`, summing them. Mode 0:
 * every iteration reads (on the optimized tier its bounds check is hoisted
 * before the loop: one range check); mode 2: the same from the last word
 * down to the first. Mode 1: the loop stops at the first
 * word equal to `stop`, so it may end inside the call's memory however far
 * `count` reaches past it (two exits: a check per access). Mode 3: from
 * word `stop` to word `count`, a chain no vector can take (each step
 * multiplies the last), which LLVM's runtime unroller leaves as a loop of
 * two reads an iteration left when the index reaches its end, after a
 * remainder loop (its check is hoisted too). Arguments:
 * { u64 address; u64 count; u64 mode; i64 stop }; result: the sum of the
 * words read (in mode 1, those before `stop`; in mode 3, the chain). */
#include <ferry/ferry.h>

int32_t ferry_test_hostile_entry(ferry_context* cx, const void* args, void* result) {
  (void)cx;
  const uint64_t* a = (const uint64_t*)args;
  const int64_t* p = (const int64_t*)(uintptr_t)a[0];
  const uint64_t n = a[1];
  int64_t total = 0;
  if (a[2] == 0) {
    for (uint64_t i = 0; i < n; ++i) total += p[i];
  } else if (a[2] == 3) {
    uint64_t chain = 0;  /* unsigned: it wraps */
    for (uint64_t i = (uint64_t)a[3]; i < n; ++i) chain = chain * 31 + (uint64_t)p[i];
    total = (int64_t)chain;
  } else if (a[2] == 2) {
    for (uint64_t i = n; i > 0; --i) total += p[i - 1] * (int64_t)i;  /* weighted: not folded into mode 0's loop */
  } else {
    for (uint64_t i = 0; i < n; ++i) {
      if (p[i] == (int64_t)a[3]) break;
      total += p[i];
    }
  }
  *(int64_t*)result = total;
  return 0;
}
