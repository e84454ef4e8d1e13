/* Rule [ferry-context]: the first parameter is the context. */
#include <stdint.h>
#include <ferry/ferry.h>

FERRY_MOBILE uint64_t twice(uint64_t x) { /* expected-error {{[ferry-context] the first parameter of ferry::mobile function 'twice' must be 'ferry::context&' (C: 'ferry_context*')}} */
  return 2 * x;
}

FERRY_MOBILE uint64_t none(void) { /* expected-error {{[ferry-context] the first parameter of ferry::mobile function 'none'}} */
  return 0;
}
