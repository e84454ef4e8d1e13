#include "hostile.hpp"

namespace rt_test {

std::uint64_t write_at(ferry::context& cx, ferry::ref<std::uint64_t> cell, std::uint64_t address) {
  *reinterpret_cast<volatile std::uint64_t*>(address) = 1;
  return *cx.local(cell);
}

std::uint64_t write_word(ferry::context& cx, ferry::ref<std::uint64_t> cell, std::uint64_t asked, std::uint64_t index,
                         std::uint64_t value) {
  volatile std::uint64_t* p = cx.local(cell, asked);
  p[index] = value;
  return p[0];
}

std::uint64_t bump_each(ferry::context& cx, ferry::ref<std::uint64_t> cell, std::uint64_t count, std::uint64_t stride) {
  std::uint64_t sum = 0;
  for (std::uint64_t i = 0; i < count; ++i) sum += ++*cx.local(cell + i * stride);
  return sum;
}

std::uint64_t divide(ferry::context& cx, ferry::ref<std::uint64_t> cell, std::uint64_t by) {
  return *cx.local(cell) / by;
}

std::uint64_t trap_if(ferry::context& cx, ferry::ref<std::uint64_t> cell, std::uint64_t yes) {
  if (yes) __builtin_trap();
  return *cx.local(cell);
}

namespace {
std::uint64_t deeper(std::uint64_t n, std::uint64_t limit) {
  volatile std::uint64_t pad[64];
  pad[n % 64] = n;
  if (n >= limit) return pad[n % 64];
  return deeper(n + 1, limit) + pad[(n * 7) % 64];  // not a tail call: every level keeps its frame
}
// Each call writes memory, so the optimizer cannot merge the two calls.
std::uint64_t fan(std::uint64_t depth, volatile std::uint64_t* calls) {
  *calls = *calls + 1;
  return depth == 0 ? 1 : fan(depth - 1, calls) + fan(depth - 1, calls);
}
}  // namespace

std::uint64_t recurse(ferry::context& cx, ferry::ref<std::uint64_t> cell, std::uint64_t limit) {
  return *cx.local(cell) + deeper(0, limit);
}

std::uint64_t huge_frame(ferry::context& cx, ferry::ref<std::uint64_t> cell, std::uint64_t index) {
  volatile char big[std::size_t{1} << 30];
  big[index % sizeof big] = 1;
  return *cx.local(cell) + big[(index * 7) % sizeof big];
}

namespace {
void write_bytes(volatile unsigned char* to, std::uint64_t bytes) {
  for (std::uint64_t i = 0; i < bytes; ++i) to[i] = static_cast<unsigned char>(0x41 + i);
}
[[gnu::noinline]] std::uint64_t fill_local(std::uint64_t bytes, bool through_helper) {
  volatile unsigned char buf[16];
  if (through_helper) {
    // A pointer read back from memory: what it points at is not known
    // where it is used, even once the helper is inlined.
    volatile unsigned char* volatile to = buf;
    write_bytes(to, bytes);
  } else {
    for (std::uint64_t i = 0; i < bytes; ++i) buf[i] = static_cast<unsigned char>(0x41 + i);
  }
  return buf[0] + buf[15];
}
}  // namespace

std::uint64_t overrun_local(ferry::context& cx, ferry::ref<std::uint64_t> cell, std::uint64_t bytes) {
  return *cx.local(cell) + fill_local(bytes, false);
}

std::uint64_t overrun_through(ferry::context& cx, ferry::ref<std::uint64_t> cell, std::uint64_t bytes) {
  return *cx.local(cell) + fill_local(bytes, true);
}

std::uint64_t loop_forever(ferry::context& cx, ferry::ref<std::uint64_t> cell) {
  volatile std::uint64_t* p = cx.local(cell);
  for (;;) *p = *p + 1;
}

std::uint64_t fan_out(ferry::context& cx, ferry::ref<std::uint64_t> cell, std::uint64_t depth) {
  return fan(depth, cx.local(cell));
}

std::uint64_t address_of(ferry::context& cx, ferry::ref<std::uint64_t> cell) {
  return reinterpret_cast<std::uintptr_t>(cx.local(cell));
}

std::uint64_t fetched_address(ferry::context& cx, ferry::ref<std::uint64_t> cell) {
  return reinterpret_cast<std::uintptr_t>(cx.fetch(cell, 1));
}

std::uint64_t read_at(ferry::context& cx, ferry::ref<std::uint64_t> cell, std::uint64_t address) {
  const std::uint64_t own = *cx.local(cell);  // first: the call holds its object when it reads
  return *reinterpret_cast<volatile const std::uint64_t*>(address) + own;
}

std::uint64_t write_context(ferry::context& cx, ferry::ref<std::uint64_t> cell) {
  *reinterpret_cast<volatile std::uint64_t*>(&cx) = 1;
  return *cx.local(cell);
}

namespace {
using word_function = std::uint64_t (*)(std::uint64_t);
[[gnu::noinline]] std::uint64_t twice(std::uint64_t v) { return 2 * v; }
[[gnu::noinline]] std::uint64_t thrice(std::uint64_t v) { return 3 * v; }
}  // namespace

std::uint64_t call_through(ferry::context& cx, ferry::ref<std::uint64_t> cell, std::uint64_t target) {
  const std::uint64_t v = *cx.local(cell);
  // A constant address: the call's callee is a constant in the bitcode.
  if (target == 1) return reinterpret_cast<word_function>(std::uintptr_t{0x1000})(v);
  volatile word_function own = &twice;  // volatile: the optimizer cannot make the call direct
  const word_function f = target == 0 ? own : reinterpret_cast<word_function>(target);
  return f(v);
}

std::uint64_t function_address(ferry::context& cx, ferry::ref<std::uint64_t> cell) {
  volatile word_function f = &thrice;
  return reinterpret_cast<std::uintptr_t>(f) + 0 * *cx.local(cell);
}

namespace {
// The work of memory_work on `t` (2n words), wherever it runs.
std::uint64_t work_on(std::uint64_t* t, std::uint64_t n) {
  __builtin_memcpy(t + n, t, n * sizeof *t);  // within the object
  std::uint64_t on_stack[64];
  for (std::uint64_t i = 0; i < 64; ++i) on_stack[i] = t[i % n] * 3 + i;
  std::uint64_t at = 0, sum = 0;
  for (std::uint64_t i = 0; i < 4 * n; ++i) {  // a pointer chase through the copy
    at = t[n + at];
    sum = sum * 31 + (at ^ on_stack[(at + i) % 64]);
  }
  for (std::uint64_t v = 0; v < n; ++v) sum += t[t[v]] * v;  // neighbour of a neighbour
  return sum;
}
}  // namespace

std::uint64_t memory_work(ferry::context& cx, ferry::ref<std::uint64_t> table, std::uint64_t n) {
  return work_on(cx.local(table, 2 * n), n);
}

std::uint64_t reference_work(std::vector<std::uint64_t> table, std::uint64_t n) { return work_on(table.data(), n); }

}  // namespace rt_test
