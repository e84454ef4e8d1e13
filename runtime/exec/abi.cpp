// The C runtime API of <ferry/ferry.h>: what JIT-compiled mobile code calls.
// Each function asks the call's host, which returns normally either way;
// on failure the shim — holding no object with a destructor — leaves the
// mobile code with longjmp to run_mobile() (call_context.hpp).
#include <ferry/ferry.h>

#include "exec/call_context.hpp"

namespace ferry::exec {
namespace {

call_context& ctx(ferry_context* cx) { return *reinterpret_cast<call_context*>(cx); }

[[noreturn]] void leave_call(call_context& c) { std::longjmp(c.abort, 1); }

}  // namespace

std::int32_t run_mobile(call_context& cx, const jit_function& fn, const void* args, void* result) {
  if (setjmp(cx.abort) != 0) return static_cast<std::int32_t>(cx.failure.code());
  return fn(reinterpret_cast<ferry_context*>(&cx), args, result);
}

}  // namespace ferry::exec

using ferry::exec::ctx;
using ferry::exec::leave_call;

extern "C" {

void* ferry_local(ferry_context* cx, const ferry_ref* r, uint64_t size) {
  auto& c = ctx(cx);
  void* p = nullptr;
  if (!c.host->local(c, *r, size, &p)) leave_call(c);
  return p;
}

void ferry_read(ferry_context* cx, const ferry_ref* r, void* out, uint64_t size) {
  auto& c = ctx(cx);
  if (!c.host->read(c, *r, out, size)) leave_call(c);
}

int32_t ferry_forward(ferry_context* cx, const void* fn, const ferry_ref* target, const void* args,
                      uint64_t args_size) {
  auto& c = ctx(cx);
  if (!c.host->forward(c, fn, *target, args, args_size)) leave_call(c);
  return 0;
}

int32_t ferry_invoke(ferry_context* cx, const void* fn, const ferry_ref* target, const void* args,
                     uint64_t args_size, void* result, uint64_t result_size) {
  auto& c = ctx(cx);
  if (!c.host->invoke(c, fn, *target, args, args_size, result, result_size)) leave_call(c);
  return 0;
}

uint32_t ferry_node_id(ferry_context* cx) { return ctx(cx).host->node_id(); }
uint32_t ferry_node_kind(ferry_context* cx) { return ctx(cx).host->node_kind(); }
const char* ferry_node_triple(ferry_context* cx) { return ctx(cx).host->node_triple(); }
const char* ferry_node_cpu(ferry_context* cx) { return ctx(cx).host->node_cpu(); }

}  // extern "C"
