/* Hostile: runs a shell command. */
#include <ferry/ferry.h>
#include <stdlib.h>

int32_t ferry_test_hostile_entry(ferry_context* cx, const void* args, void* result) {
  (void)cx, (void)args, (void)result;
  return system("touch /tmp/ferry-was-here");
}
