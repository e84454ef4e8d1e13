/* Rule [ferry-subject], C spelling: only functions can be mobile. */
#include <ferry/ferry.h>

FERRY_MOBILE int table[4]; /* expected-error {{[ferry-subject] 'ferry::mobile' applies to functions only, not to variable 'table'}} */
