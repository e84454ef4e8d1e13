/* C mobile code of the consumer. */
#ifndef FERRY_CONSUMER_SCALE_H
#define FERRY_CONSUMER_SCALE_H

#include <stdint.h>

#include <ferry/ferry.h>

#ifdef __cplusplus
extern "C" {
#endif

FERRY_MOBILE uint64_t scale(ferry_context* cx, uint64_t x, uint32_t factor);

#ifdef __cplusplus
}
#endif

#endif
