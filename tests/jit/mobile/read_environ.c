/* Hostile: reads the node's environment. */
#include <ferry/ferry.h>

extern char** environ;

int32_t ferry_test_hostile_entry(ferry_context* cx, const void* args, void* result) {
  (void)cx, (void)args;
  *(char***)result = environ;
  return 0;
}
