/* Hostile: thread-local state (needs __tls_get_addr / the node's TLS). */
#include <ferry/ferry.h>

static _Thread_local int32_t calls;

int32_t ferry_test_hostile_entry(ferry_context* cx, const void* args, void* result) {
  (void)cx, (void)args;
  *(int32_t*)result = ++calls;
  return 0;
}
