/* Rule [ferry-asm]: mobile code is portable bitcode. */
#include <stdint.h>
#include <ferry/ferry.h>

FERRY_MOBILE uint64_t spin(ferry_context* cx, uint64_t n) {
  for (uint64_t i = 0; i < n; ++i) __asm__ volatile("nop"); /* expected-error {{[ferry-asm] ferry::mobile function 'spin' contains inline assembly}} */
  return n;
}
