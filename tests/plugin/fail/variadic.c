/* Rule [ferry-variadic]: the argument block has a fixed layout. */
#include <ferry/ferry.h>

FERRY_MOBILE int sum(ferry_context* cx, int n, ...); /* expected-error {{[ferry-variadic] ferry::mobile function 'sum' cannot be variadic}} */
