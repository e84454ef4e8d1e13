#include "scale.h"

FERRY_MOBILE uint64_t scale(ferry_context* cx, uint64_t x, uint32_t factor) {
  (void)cx;
  return x * factor;
}
