// The C runtime API of <ferry/ferry.h>: what JIT-compiled mobile code calls.
// A ferry_context* is the node's call_context for the running call.
#include <ferry/ferry.h>

#include "node.hpp"

using ferry::node::call_context;

namespace {
call_context& ctx(ferry_context* cx) { return *reinterpret_cast<call_context*>(cx); }
}  // namespace

extern "C" {

void* ferry_local(ferry_context* cx, const ferry_ref* r, uint64_t size) {
  auto& c = ctx(cx);
  return c.self->local(c, *r, size);
}

int32_t ferry_forward(ferry_context* cx, const void* fn, const ferry_ref* target, const void* args,
                      uint64_t args_size) {
  auto& c = ctx(cx);
  c.self->forward(c, fn, *target, args, args_size);
  return 0;
}

int32_t ferry_invoke(ferry_context* cx, const void* fn, const ferry_ref* target, const void* args,
                     uint64_t args_size, void* result, uint64_t result_size) {
  auto& c = ctx(cx);
  c.self->invoke_nested(c, fn, *target, args, args_size, result, result_size);
  return 0;
}

uint32_t ferry_node_id(ferry_context* cx) { return ctx(cx).self->index(); }
uint32_t ferry_node_kind(ferry_context* cx) { return ctx(cx).self->kind(); }
const char* ferry_node_triple(ferry_context* cx) { return ctx(cx).self->triple().c_str(); }

}  // extern "C"
