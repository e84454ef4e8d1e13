/* Hostile under bounds checks: calls memcpy through its address, a call
 * the checks could not follow (the policy refuses it). */
#include <ferry/ferry.h>
#include <string.h>

void* (*volatile copy)(void*, const void*, size_t) = memcpy;

int32_t ferry_test_hostile_entry(ferry_context* cx, const void* args, void* result) {
  (void)cx;
  copy(result, args, 8);
  return 0;
}
