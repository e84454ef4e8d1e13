/* Rule [ferry-call]: only functions of this translation unit, the runtime
 * API and the allowed libc/libm set. */
#include <stdint.h>
#include <stdio.h>
#include <ferry/ferry.h>

uint64_t lookup(uint64_t key); /* defined in another file */

static uint64_t helper(uint64_t x) {
  return lookup(x) + 1; /* expected-error {{[ferry-call] ferry::mobile function 'find' calls 'lookup', which is not defined in this translation unit}} */
}

FERRY_MOBILE uint64_t find(ferry_context* cx, uint64_t key) {
  printf("%llu\n", (unsigned long long)key); /* expected-error {{[ferry-call] ferry::mobile function 'find' calls 'printf'}} */
  return helper(key) + ferry_node_id(cx);
}
