/* Rule [ferry-mutable-global]: each node would get its own copy. */
#include <stdint.h>
#include <ferry/ferry.h>

static uint64_t hits;
static const uint64_t kLimit = 10; /* const: travels with the code */

FERRY_MOBILE uint64_t hit(ferry_context* cx) {
  (void)cx;
  if (hits < kLimit) ++hits; /* expected-error 2 {{[ferry-mutable-global] ferry::mobile function 'hit' uses mutable global 'hits'}} */
  return hits; /* expected-error {{[ferry-mutable-global] ferry::mobile function 'hit' uses mutable global 'hits'}} */
}
