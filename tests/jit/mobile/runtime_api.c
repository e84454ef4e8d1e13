/* Calls the runtime API: reads a local uint64 and adds the node id. */
#include <ferry/ferry.h>

int32_t ferry_test_runtime_entry(ferry_context* cx, const void* args, void* result) {
  const ferry_ref* r = (const ferry_ref*)args;
  const uint64_t* v = (const uint64_t*)ferry_local(cx, r, sizeof *v);
  if (!v) return 10; /* not_local */
  *(uint64_t*)result = *v + ferry_node_id(cx);
  return 0;
}
