/* C mobile code for the compile-pass tests (built with ferry_add_mobile). */
#ifndef FERRY_TEST_VECTOR_H
#define FERRY_TEST_VECTOR_H

#include <stdint.h>

#include <ferry/ferry.h>

#ifdef __cplusplus
extern "C" {
#endif

struct point {
  double x, y;
};

FERRY_MOBILE double vec_norm(ferry_context* cx, struct point p);
[[ferry::mobile]] uint64_t vec_sum(ferry_context* cx, ferry_ref data, uint32_t n);
FERRY_MOBILE void vec_clear(ferry_context* cx, ferry_ref data, uint32_t n);
/* Address of a `static` mobile function (static functions are indexed too). */
const void* vec_weighted_address(void);

#ifdef __cplusplus
}
#endif

#endif
