/* C mobile code: GNU and C23 spellings, a static inline helper, a constant
 * table, libm, a static mobile function and a void result. */
#include "vector.h"

#include <math.h>
#include <string.h>

static const double kWeights[4] = {0.125, 0.25, 0.5, 1.0};

static inline double sq(double v) { return v * v; }

FERRY_MOBILE double vec_norm(ferry_context* cx, struct point p) {
  (void)cx;
  return sqrt(sq(p.x) + sq(p.y));
}

[[ferry::mobile]] uint64_t vec_sum(ferry_context* cx, ferry_ref data, uint32_t n) {
  const uint64_t* v = (const uint64_t*)ferry_local(cx, &data, (uint64_t)n * sizeof(uint64_t));
  uint64_t s = 0;
  if (!v) return 0;
  for (uint32_t i = 0; i < n; ++i) s += v[i];
  return s;
}

FERRY_MOBILE void vec_clear(ferry_context* cx, ferry_ref data, uint32_t n) {
  void* v = ferry_local(cx, &data, (uint64_t)n * sizeof(uint64_t));
  if (v) memset(v, 0, (size_t)n * sizeof(uint64_t));
}

FERRY_MOBILE static double vec_weighted(ferry_context* cx, struct point p, uint32_t k) {
  (void)cx;
  return kWeights[k % 4] * (p.x + p.y);
}

const void* vec_weighted_address(void) { return (const void*)&vec_weighted; }
