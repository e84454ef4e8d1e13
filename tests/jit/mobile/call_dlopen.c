/* Hostile: loads a library to reach symbols past the allow-list. */
#include <dlfcn.h>
#include <ferry/ferry.h>

int32_t ferry_test_hostile_entry(ferry_context* cx, const void* args, void* result) {
  (void)cx, (void)args;
  *(void**)result = dlopen("libc.so.6", RTLD_NOW);
  return 0;
}
