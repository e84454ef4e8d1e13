// The C runtime API of <ferry/ferry.h>: what JIT-compiled mobile code calls.
// Each function asks the call's host, which returns normally either way;
// on failure the shim — holding no object with a destructor — leaves the
// mobile code with siglongjmp to run_mobile() (call_context.hpp).
//
// Containment lives here too, since this is the one place that enters
// mobile code: the fault handler that turns a signal raised by mobile code
// into that call's error, fuel accounting (ferry_fuel) and the bounds
// checks' slow path (ferry_bounds: the regions a call may touch).
#include <ferry/ferry.h>

#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>

#include <array>
#include <cstring>
#include <optional>
#include <mutex>

#include <fmt/format.h>

#include "code/loader.hpp"
#include "exec/call_context.hpp"

namespace ferry::exec {
namespace {

call_context& ctx(ferry_context* cx) { return *reinterpret_cast<call_context*>(cx); }

// What the fault handler may read about this thread: trivially destructible
// and initial-exec, so touching it in a signal handler never allocates.
struct mobile_thread {
  call_context* running = nullptr;  ///< the call whose mobile code runs here, if any
  bool in_runtime = false;          ///< inside the runtime API (ferry code): faults there are ferry's
  bool ready = false;               ///< handlers, alternate stack and stack bounds set up
  int signal = 0;                   ///< the fault that ended the call
  std::uintptr_t fault_address = 0;
  std::uintptr_t stack_low = 0;     ///< lowest usable address of this thread's stack
  std::uint32_t deadline_countdown = 0;  ///< ferry_fuel calls until the next deadline check
};
thread_local mobile_thread self_thread __attribute__((tls_model("initial-exec")));

// The alternate signal stack this thread got from us (freed at thread exit).
struct alt_stack {
  static constexpr std::size_t kBytes = 64 * 1024;
  void* base = nullptr;
  ~alt_stack() {
    if (!base) return;
    stack_t off{};
    off.ss_flags = SS_DISABLE;
    ::sigaltstack(&off, nullptr);
    ::munmap(base, kBytes);
  }
};
thread_local alt_stack own_alt_stack;

constexpr std::array<int, 5> kFaultSignals{SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP};
struct sigaction previous_action[NSIG];

// Not mobile code's fault: what would have happened without ferry.
void pass_on(int sig, siginfo_t* info, void* uc) {
  const struct sigaction& prev = previous_action[sig];
  if ((prev.sa_flags & SA_SIGINFO) && prev.sa_sigaction) return prev.sa_sigaction(sig, info, uc);
  if (!(prev.sa_flags & SA_SIGINFO) && prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN)
    return prev.sa_handler(sig);
  // Default action: delivered once this handler returns (the signal is blocked until then).
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

void on_fault(int sig, siginfo_t* info, void* uc) {
  mobile_thread& t = self_thread;
  if (!t.running || t.in_runtime) return pass_on(sig, info, uc);
  t.signal = sig;
  t.fault_address = reinterpret_cast<std::uintptr_t>(info->si_addr);
  sigset_t unblock;
  sigemptyset(&unblock);
  sigaddset(&unblock, sig);
  ::pthread_sigmask(SIG_UNBLOCK, &unblock, nullptr);  // sigsetjmp saved no mask: the call must not leave it blocked
  siglongjmp(t.running->abort, 1);
}

void install_handlers() {
  struct sigaction sa{};
  sa.sa_sigaction = on_fault;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  for (int sig : kFaultSignals) ::sigaction(sig, &sa, &previous_action[sig]);
}

// Once per thread that runs mobile code: the process's handlers, an
// alternate signal stack (a stack overflow leaves no room on the thread's
// own), and where the thread's stack ends.
void prepare_thread(mobile_thread& t) {
  static std::once_flag handlers;
  std::call_once(handlers, install_handlers);
  stack_t current{};
  if (::sigaltstack(nullptr, &current) == 0 && (current.ss_flags & SS_DISABLE)) {
    void* base = ::mmap(nullptr, alt_stack::kBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (base != MAP_FAILED) {
      stack_t ss{};
      ss.ss_sp = base;
      ss.ss_size = alt_stack::kBytes;
      if (::sigaltstack(&ss, nullptr) == 0) own_alt_stack.base = base;
      else ::munmap(base, alt_stack::kBytes);
    }
  }
  pthread_attr_t attr;
  if (::pthread_getattr_np(::pthread_self(), &attr) == 0) {
    void* low = nullptr;
    std::size_t size = 0;
    if (::pthread_attr_getstack(&attr, &low, &size) == 0) t.stack_low = reinterpret_cast<std::uintptr_t>(low);
    ::pthread_attr_destroy(&attr);
  }
  t.ready = true;
}

// The error of a call that a fault ended.
status fault_status(const call_context& cx, const mobile_thread& t) {
  const std::string& name = cx.code ? cx.code->code.name : std::string();
  const std::uintptr_t a = t.fault_address;
  switch (t.signal) {
    case SIGSEGV:
    case SIGBUS:
      // Stack frames are probed page by page, so an overflow faults just
      // below the stack's end (its guard page).
      if (t.stack_low && a < t.stack_low + 4096 && a + (std::uintptr_t{1} << 20) >= t.stack_low)
        return make_error(errc::stack_overflow,
                          fmt::format("{} ran past its stack (deep recursion or large local arrays)", name));
      return make_error(errc::memory_fault, fmt::format("{} touched memory it may not at {:#x} ({})", name, a,
                                                        t.signal == SIGSEGV ? "SIGSEGV" : "SIGBUS"));
    case SIGFPE:
      return make_error(errc::arithmetic_fault, fmt::format("{} divided by zero (or overflowed a division): SIGFPE", name));
    default:
      return make_error(errc::trapped, fmt::format("{} executed a trap or an illegal instruction ({})", name,
                                                   t.signal == SIGTRAP ? "SIGTRAP" : "SIGILL"));
  }
}

[[noreturn]] void leave_call(call_context& c) { siglongjmp(c.abort, 1); }

// Runtime API calls are ferry code: a fault inside one is not the mobile code's.
struct in_runtime {
  bool before;
  in_runtime() : before(self_thread.in_runtime) { self_thread.in_runtime = true; }
  ~in_runtime() { self_thread.in_runtime = before; }
};

// Charge `units` of fuel to the call running on this thread; false (with the
// error in the call) when its fuel or time is up.
bool charge(call_context& cx, mobile_thread& t, std::uint64_t units) {
  cx.fuel -= static_cast<std::int64_t>(units);
  if (cx.fuel < 0) {
    cx.failure = make_error(errc::fuel_exhausted,
                            fmt::format("{} used up its fuel (the node's per-call limit of calls and loop iterations)",
                                        cx.code ? cx.code->code.name : std::string()));
    return false;
  }
  // The clock is read once per block of loop iterations, or every 1024 calls.
  if (units == 1 && t.deadline_countdown-- != 0) return true;
  t.deadline_countdown = 1024;
  if (cx.while_running) cx.while_running(cx.while_running_arg);
  const std::uint64_t deadline = cx.call ? cx.call->deadline_us : 0;
  if (deadline == 0) return true;
  const auto now = std::chrono::duration_cast<std::chrono::microseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  if (static_cast<std::uint64_t>(now) < deadline) return true;
  cx.failure = make_error(errc::timeout, fmt::format("{} was still running at the call's deadline: stopped",
                                                     cx.code ? cx.code->code.name : std::string()));
  return false;
}

const char* kOutside = "outside the memory this call may touch (its stack, its module's globals, what the runtime handed it)";

// A region of the running call, and whether the call may write it.
struct found_region {
  ferry_bounds_region region;
  bool writable;
};

// May the running call `cx` touch (`how`: write, or only read) the `size`
// bytes at `a`? Its stack below its entry's frame, a global of its module,
// memory the runtime handed it to write, and to read: what the runtime
// handed it to read only.
std::optional<found_region> find_region(const call_context& cx, const mobile_thread& t, std::uint64_t a,
                                        std::uint64_t size, access how) {
  if (const auto* r = cx.writable.find(a, size)) return found_region{*r, true};
  const ferry_bounds_region stack{t.stack_low, cx.stack_top > t.stack_low ? cx.stack_top - t.stack_low : 0};
  if (region_set::holds(&stack, a, size)) return found_region{stack, true};
  if (const void* module = cx.module_regions) {
    // { u64 count; { const void* at; u64 size; } rows[count]; } (jit/contain.cpp)
    // (a pointer and a u64 per row: the same layout as ferry_bounds_region on 64-bit targets)
    // Its constants are read-only pages: a write there faults (memory_fault).
    const auto count = *static_cast<const std::uint64_t*>(module);
    const auto* rows = reinterpret_cast<const ferry_bounds_region*>(static_cast<const std::uint64_t*>(module) + 1);
    for (std::uint64_t i = 0; i < count; ++i)
      if (region_set::holds(&rows[i], a, size)) return found_region{rows[i], true};
  }
  if (how == access::read)
    if (const auto* r = cx.read_only.find(a, size)) return found_region{*r, false};
  return std::nullopt;
}

// find_region past the regions admitted last, remembering what it finds.
std::optional<ferry_bounds_region> look_up(const call_context& cx, const mobile_thread& t, std::uint64_t a,
                                           std::uint64_t size, access how) {
  if (size == 0) return ferry_bounds_region{a, 0};
  auto r = find_region(cx, t, a, size, how);
  if (!r) return std::nullopt;
  cx.recent.remember(r->region, r->writable);
  return r->region;
}

// Why the `size` bytes at `a` may not be touched (`how`): outside every
// region, or a write into one the call may only read.
const char* refused_because(const call_context& cx, const mobile_thread& t, std::uint64_t a, std::uint64_t size,
                            access how) {
  if (how == access::write && find_region(cx, t, a, size, access::read))
    return "into memory this call may only read (what cx.view or cx.fetch handed it, the node's strings)";
  return kOutside;
}

// The runtime API's own check of a pointer bounds-checked code gave it,
// where the runtime reads (access::read) or writes: false, with the error
// in the call.
bool handed_in(call_context& cx, const void* p, std::uint64_t size, const char* what, access how = access::read) {
  if (!cx.stack_top) return true;  // unchecked code
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  if (cx.recent.find(a, size, how) || look_up(cx, self_thread, a, size, how)) return true;
  in_runtime guard;
  cx.failure = make_error(errc::memory_fault,
                          fmt::format("{} passed {} ({} bytes at {:#x}) {}", cx.code ? cx.code->code.name : std::string(),
                                      what, size, a, refused_because(cx, self_thread, a, size, how)));
  return false;
}

// ferry_bounds and ferry_bounds_write past the regions admitted last:
// another region of the call, or its end with memory_fault. Out of line,
// so that the hooks themselves are a few instructions (the fast tier calls
// them at every access).
[[gnu::noinline]] ferry_bounds_region bounds_past_last(call_context& c, const mobile_thread& t, std::uint64_t a,
                                                       std::uint64_t size, access how) {
  if (auto r = look_up(c, t, a, size, how)) return *r;
  {
    in_runtime guard;
    c.failure = make_error(errc::memory_fault, fmt::format("{} {} {} bytes at {:#x}, {}",
                                                           c.code ? c.code->code.name : std::string(),
                                                           how == access::read ? "accessed" : "wrote", size, a,
                                                           refused_because(c, t, a, size, how)));
  }
  leave_call(c);
}

// ferry_bounds (`how`: read) and ferry_bounds_write: the regions admitted
// last, a few instructions, then the rest out of line.
[[gnu::always_inline]] inline ferry_bounds_region bounds_check(std::uint64_t a, std::uint64_t size, access how) {
  auto& t = self_thread;
  if (!t.running || t.in_runtime) return {0, UINT64_MAX};  // outside a call: nothing to check against
  auto& c = *t.running;
  if (const auto* r = c.recent.find(a, size, how)) return *r;
  return bounds_past_last(c, t, a, size, how);
}

}  // namespace

namespace {
// Enter mobile code through `enter()`: the one place that does, so the
// fault handler and the runtime API's failures come back here.
template <class Enter>
std::int32_t enter_mobile(call_context& cx, Enter&& enter) {
  mobile_thread& t = self_thread;
  if (!t.ready) [[unlikely]] prepare_thread(t);
  call_context* const outer = t.running;
  const bool outer_in_runtime = t.in_runtime;
  if (sigsetjmp(cx.abort, 0) != 0) {
    t.running = outer;
    t.in_runtime = outer_in_runtime;
    if (t.signal) {
      cx.failure = fault_status(cx, t);
      t.signal = 0;
    }
    return static_cast<std::int32_t>(cx.failure.code());
  }
  t.running = &cx;
  t.in_runtime = false;
  const std::int32_t rc = enter(reinterpret_cast<ferry_context*>(&cx));
  t.running = outer;
  t.in_runtime = outer_in_runtime;
  return rc;
}
}  // namespace

std::int32_t run_mobile(call_context& cx, const jit_function& fn, const void* args, std::uint64_t args_size,
                        void* result, std::uint64_t result_size) {
  cx.writable.add(args, args_size);
  cx.writable.add(result, result_size);
  return enter_mobile(cx, [&](ferry_context* c) { return fn(c, args, result); });
}

std::int32_t run_mobile(call_context& cx, std::int32_t (*native)(const void*, ferry_context*, const void*, void*),
                        const void* fn, const void* args, void* result) {
  return enter_mobile(cx, [&](ferry_context* c) { return native(fn, c, args, result); });
}

}  // namespace ferry::exec

using ferry::exec::access;
using ferry::exec::ctx;
using ferry::exec::handed_in;
using ferry::exec::in_runtime;
using ferry::exec::leave_call;

extern "C" {

namespace {
void* local_bytes(ferry_context* cx, const ferry_ref* r, uint64_t size, ferry::exec::access how) {
  auto& c = ctx(cx);
  if (!handed_in(c, r, sizeof *r, "a ref")) leave_call(c);
  void* p = nullptr;
  bool ok;
  {
    in_runtime guard;
    ok = c.host->local(c, *r, size, how, &p);
  }
  if (!ok) leave_call(c);
  c.admit(p, size, how);
  return p;
}
}  // namespace

void* ferry_local(ferry_context* cx, const ferry_ref* r, uint64_t size) {
  return local_bytes(cx, r, size, access::write);
}

const void* ferry_view(ferry_context* cx, const ferry_ref* r, uint64_t size) {
  return local_bytes(cx, r, size, access::read);
}

void ferry_read(ferry_context* cx, const ferry_ref* r, void* out, uint64_t size) {
  auto& c = ctx(cx);
  if (!handed_in(c, r, sizeof *r, "a ref") || !handed_in(c, out, size, "cx.read's buffer", access::write))
    leave_call(c);
  if (!c.host->read(c, *r, out, size)) leave_call(c);
}

int32_t ferry_forward(ferry_context* cx, const void* fn, const ferry_ref* target, const void* args,
                      uint64_t args_size) {
  auto& c = ctx(cx);
  if (!handed_in(c, target, sizeof *target, "a ref") || !handed_in(c, args, args_size, "arguments")) leave_call(c);
  bool ok;
  {
    in_runtime guard;
    ok = c.host->forward(c, fn, *target, args, args_size);
  }
  if (!ok) leave_call(c);
  return 0;
}

int32_t ferry_invoke(ferry_context* cx, const void* fn, const ferry_ref* target, const void* args,
                     uint64_t args_size, void* result, uint64_t result_size) {
  auto& c = ctx(cx);
  if (!handed_in(c, target, sizeof *target, "a ref") || !handed_in(c, args, args_size, "arguments") ||
      !handed_in(c, result, result_size, "a result buffer", access::write))
    leave_call(c);
  bool ok;
  {
    in_runtime guard;
    ok = c.host->invoke(c, fn, *target, args, args_size, result, result_size);
  }
  if (!ok) leave_call(c);
  return 0;
}

void ferry_resolve(ferry_context* cx, const ferry_ref* holder, uint64_t ptr_bits, ferry_ref* out) {
  auto& c = ctx(cx);
  if (!handed_in(c, holder, sizeof *holder, "a ref") || !handed_in(c, out, sizeof *out, "a ref to fill", access::write))
    leave_call(c);
  if (!c.host->resolve(c, *holder, ptr_bits, out)) leave_call(c);
}

uint64_t ferry_make_ptr(ferry_context* cx, const ferry_ref* holder, const ferry_ref* target) {
  auto& c = ctx(cx);
  if (!handed_in(c, holder, sizeof *holder, "a ref") || !handed_in(c, target, sizeof *target, "a ref")) leave_call(c);
  std::uint64_t bits = 0;
  if (!c.host->make_ptr(c, *holder, *target, &bits)) leave_call(c);
  return bits;
}

const void* ferry_fetch(ferry_context* cx, const ferry_ref* r, uint64_t size) {
  auto& c = ctx(cx);
  if (!handed_in(c, r, sizeof *r, "a ref")) leave_call(c);
  const void* p = nullptr;
  if (!c.host->fetch(c, *r, size, &p)) leave_call(c);
  c.read_only.add(p, size);  // the call's private copy, but a const pointer
  return p;
}

void ferry_migrate(ferry_context* cx, const ferry_ref* r, uint32_t node) {
  auto& c = ctx(cx);
  if (!handed_in(c, r, sizeof *r, "a ref")) leave_call(c);
  bool ok;
  {
    in_runtime guard;
    ok = c.host->migrate(c, *r, node);
  }
  if (!ok) leave_call(c);
}

uint32_t ferry_node_id(ferry_context* cx) { return ctx(cx).host->node_id(); }
uint32_t ferry_node_kind(ferry_context* cx) { return ctx(cx).host->node_kind(); }
// The node's strings: checked code may read them (the runtime's own memory).
const char* ferry_node_triple(ferry_context* cx) {
  const char* s = ctx(cx).host->node_triple();
  ctx(cx).read_only.add(s, std::strlen(s) + 1);
  return s;
}
const char* ferry_node_cpu(ferry_context* cx) {
  const char* s = ctx(cx).host->node_cpu();
  ctx(cx).read_only.add(s, std::strlen(s) + 1);
  return s;
}

void ferry_fuel(uint64_t units) {
  auto& t = ferry::exec::self_thread;
  if (!t.running || t.in_runtime) return;
  auto& c = *t.running;
  bool ok;
  {
    in_runtime guard;
    ok = ferry::exec::charge(c, t, units);
  }
  if (!ok) leave_call(c);
}

ferry_bounds_region ferry_bounds(uint64_t address, uint64_t size) {
  return ferry::exec::bounds_check(address, size, access::read);
}

ferry_bounds_region ferry_bounds_write(uint64_t address, uint64_t size) {
  return ferry::exec::bounds_check(address, size, access::write);
}

void ferry_bounds_object(uint64_t address, uint64_t size, uint64_t object, uint64_t object_bytes) {
  const ferry_bounds_region own{object, object_bytes};
  if (ferry::exec::region_set::holds(&own, address, size)) return;
  auto& t = ferry::exec::self_thread;
  if (!t.running || t.in_runtime) return;  // outside a call: nothing to check against
  auto& c = *t.running;
  {
    in_runtime guard;
    c.failure = ferry::make_error(
        ferry::errc::memory_fault,
        fmt::format("{} accessed {} bytes at {:#x}, outside the local array or global of {} bytes at {:#x} it computed the "
                    "address from",
                    c.code ? c.code->code.name : std::string(), size, address, object_bytes, object));
  }
  leave_call(c);
}

void ferry_stack_smashed(void) {
  auto& t = ferry::exec::self_thread;
  if (!t.running || t.in_runtime) std::abort();  // not mobile code's frame: as libc's __stack_chk_fail
  auto& c = *t.running;
  {
    in_runtime guard;
    c.failure = ferry::make_error(
        ferry::errc::memory_fault,
        fmt::format("{} overwrote its stack frame past a local array (the frame's canary changed before it returned)",
                    c.code ? c.code->code.name : std::string()));
  }
  leave_call(c);
}

void ferry_bad_callee(uint64_t target) {
  auto& t = ferry::exec::self_thread;
  if (!t.running || t.in_runtime) return;  // outside a call: nothing to check against
  auto& c = *t.running;
  {
    in_runtime guard;
    c.failure = ferry::make_error(ferry::errc::memory_fault,
                                  fmt::format("{} called through a pointer to {:#x}, which is not a function of its code object",
                                              c.code ? c.code->code.name : std::string(), target));
  }
  leave_call(c);
}

void ferry_bounds_enter(const void* frame, const void* module_regions) {
  auto& t = ferry::exec::self_thread;
  if (!t.running || t.in_runtime) return;
  t.running->stack_top = reinterpret_cast<std::uintptr_t>(frame);
  t.running->module_regions = module_regions;
  t.running->recent = {};  // the stack region it may hold just changed
}

}  // extern "C"
