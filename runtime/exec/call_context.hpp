// ⑧ execute: the mobile-code ABI, node side.
//
// A ferry_context* (ferry.h) is a call_context: the state of one running
// mobile call. Mobile code reaches its node through the C functions of
// ferry.h (abi.cpp), which ask the node's call_host.
//
// Failure: ferry_local/ferry_invoke do not return when they fail (ferry.h).
// The host functions here *return* — false, with the error in
// call_context::failure — so every C++ object they made is destroyed the
// ordinary way; only then does the C shim in abi.cpp, which holds nothing
// with a destructor, longjmp to run_mobile(), the one place that enters
// mobile code. Mobile code itself must not keep state that needs a
// destructor across a runtime-API call (docs/plugin.md).
//
// Faults: while mobile code (not the runtime API it called) runs on a
// thread, a SIGSEGV, SIGBUS, SIGFPE, SIGILL or SIGTRAP raised there leaves
// it the same way, from a signal handler on the thread's alternate signal
// stack, and the call fails with errc::memory_fault, stack_overflow,
// arithmetic_fault or trapped (docs/security.md). The JIT probes every stack
// frame page by page, so running past the thread's stack always meets its
// guard page. Anywhere else such a signal does what it did before ferry
// (the previous handler, or the default: the process dies).
#pragma once

#include <setjmp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <ferry/object_id.hpp>

#include <ferry/ferry.h>
#include "jit/jit.hpp"
#include <ferry/status.hpp>

#include "wire/frames.hpp"

namespace ferry::code {
struct code_entry;
}
namespace ferry::session {
class member;
}

namespace ferry::exec {

struct call_context;

/// How mobile code will use the bytes it asks for in place: cx.local may
/// write them, cx.view only reads them.
enum class access : std::uint8_t { write, read };

/// What mobile code can ask of the node it runs on. Each request returns
/// false and sets `cx.failure` when it fails.
class call_host {
 public:
  virtual bool local(call_context& cx, const ferry_ref& r, std::uint64_t size, access how, void** out) = 0;
  virtual bool read(call_context& cx, const ferry_ref& r, void* out, std::uint64_t size) = 0;
  virtual bool forward(call_context& cx, const void* fn, const ferry_ref& target, const void* args,
                       std::uint64_t size) = 0;
  virtual bool invoke(call_context& cx, const void* fn, const ferry_ref& target, const void* args, std::uint64_t size,
                      void* result, std::uint64_t result_size) = 0;
  virtual bool resolve(call_context& cx, const ferry_ref& holder, std::uint64_t ptr_bits, ferry_ref* out) = 0;
  virtual bool make_ptr(call_context& cx, const ferry_ref& holder, const ferry_ref& target, std::uint64_t* out) = 0;
  virtual bool fetch(call_context& cx, const ferry_ref& r, std::uint64_t size, const void** out) = 0;
  virtual bool migrate(call_context& cx, const ferry_ref& r, std::uint32_t node) = 0;
  [[nodiscard]] virtual std::uint32_t node_id() const = 0;
  [[nodiscard]] virtual std::uint32_t node_kind() const = 0;
  [[nodiscard]] virtual const char* node_triple() const = 0;
  [[nodiscard]] virtual const char* node_cpu() const = 0;

 protected:
  ~call_host() = default;
};

/// A small set of what a call gathered as it ran: the first kInline
/// elements live inline, so a call touching a few objects allocates nothing.
template <class T>
class small_set {
 public:
  static constexpr std::size_t kInline = 4;
  void add(const T& id) {
    for (std::size_t i = 0; i < n_; ++i)
      if (inline_[i] == id) return;
    if (n_ < kInline) {
      inline_[n_++] = id;
      return;
    }
    for (const auto& x : more_)
      if (x == id) return;
    more_.push_back(id);
  }
  template <class F>
  void each(F&& f) const {
    for (std::size_t i = 0; i < n_; ++i) f(inline_[i]);
    for (const auto& x : more_) f(x);
  }
  [[nodiscard]] bool empty() const { return n_ == 0; }

 private:
  T inline_[kInline];
  std::size_t n_ = 0;
  std::vector<T> more_;
};

/// Widen [lo, end) to take in [other_lo, other_end) if the two overlap or
/// adjoin; false (and nothing changed) if they are apart.
inline bool join_if_touching(std::uint64_t& lo, std::uint64_t& end, std::uint64_t other_lo, std::uint64_t other_end) {
  if (other_lo > end || lo > other_end) return false;
  lo = std::min(lo, other_lo);
  end = std::max(end, other_end);
  return true;
}

/// Memory the runtime handed to one call (docs/security.md, "Bounds
/// checks"): the regions ferry_bounds admits besides the call's stack and
/// its module's globals. The first kInline live inline, so a call touching
/// a few objects allocates nothing; the rest are kept sorted, so a call
/// touching many objects finds each in log time. Ranges that overlap or
/// adjoin are kept as one region (cx.local hands out the ranges of one
/// object it was asked for apiece), so no two regions overlap and an
/// access across adjoining ranges is admitted; a range inside one already
/// admitted adds nothing.
class region_set {
 public:
  static constexpr std::size_t kInline = 8;
  /// Admit the `span` bytes from `lo` (kept until the call ends).
  void add(const void* lo, std::uint64_t span) {
    std::uint64_t a = reinterpret_cast<std::uintptr_t>(lo);
    if (span == 0 || find(a, span)) return;
    std::uint64_t end = a + span;
    last_ = nullptr;  // entries move
    const auto absorb = [&](const ferry_bounds_region& r) { return join_if_touching(a, end, r.lo, r.lo + r.span); };
    for (std::size_t i = 0; i < n_;) {
      if (absorb(inline_[i])) {
        inline_[i] = inline_[--n_];
      } else {
        ++i;
      }
    }
    std::erase_if(more_, absorb);
    if (n_ < kInline) {
      inline_[n_++] = {a, end - a};
      return;
    }
    const auto at = std::upper_bound(more_.begin(), more_.end(), a, [](std::uint64_t x, const ferry_bounds_region& r) {
      return x < r.lo;
    });
    more_.insert(at, {a, end - a});
  }
  /// The region holding all `size` bytes at `a`, if any (the last one found first).
  const ferry_bounds_region* find(std::uint64_t a, std::uint64_t size) const {
    if (holds(last_, a, size)) return last_;
    for (std::size_t i = 0; i < n_; ++i)
      if (holds(&inline_[i], a, size)) return last_ = &inline_[i];
    // The one sorted region that starts last at or before `a`.
    const auto at = std::upper_bound(more_.begin(), more_.end(), a, [](std::uint64_t x, const ferry_bounds_region& r) {
      return x < r.lo;
    });
    if (at != more_.begin() && holds(&*std::prev(at), a, size)) return last_ = &*std::prev(at);
    return nullptr;
  }

  /// Does `r` hold all `size` bytes at `a`? (Without overflow: lo <= a,
  /// a - lo <= span and size <= span - (a - lo).)
  static bool holds(const ferry_bounds_region* r, std::uint64_t a, std::uint64_t size) {
    return r && a >= r->lo && a - r->lo <= r->span && size <= r->span - (a - r->lo);
  }

 private:
  ferry_bounds_region inline_[kInline];
  std::size_t n_ = 0;
  std::vector<ferry_bounds_region> more_;
  mutable const ferry_bounds_region* last_ = nullptr;
};

/// State of one mobile call while it runs (what ferry_context* points to).
struct call_context {
  call_host* host = nullptr;
  const code::code_entry* code = nullptr;
  const wire::invoke_body* call = nullptr;
  sigjmp_buf abort;  ///< the shim (or the fault handler) leaves the mobile code here on failure
  status failure;
  /// Work left (ferry_fuel units: calls and loop iterations); the call ends
  /// with errc::fuel_exhausted below zero. Set by the runner.
  std::int64_t fuel = INT64_MAX;
  /// When set, run now and then while the call's metered code runs (when the
  /// meter reads the clock: every block of loop iterations, or every 1024
  /// calls). The runner sets it for a call run in place on the driving
  /// thread, whose heartbeats must not stop however long the call turns out
  /// (session::member::beat_while_busy).
  void (*while_running)(void* arg) = nullptr;
  void* while_running_arg = nullptr;
  bool forwarded = false;
  wire::invoke_body forward;  ///< the continuation, when forwarded
  /// What cx.local handed out of objects in a persistent store (data
  /// offsets), in the order asked: the runner seals these bytes when the
  /// call ends (docs/reliability.md, "Objects: durability and limits").
  struct written_range {
    object_id id;
    std::uint64_t offset;
    std::uint64_t length;
  };
  std::vector<written_range> touched;
  /// Past this many ranges a call's cx.local hands out the rest of each
  /// object whole (runner::local): a pointer per element costs neither a
  /// range nor a bounds region each.
  static constexpr std::size_t kMaxWrittenRanges = 64;
  /// Record a range cx.local handed out (one inside a range recorded
  /// already adds nothing; one overlapping or adjoining the last widens it).
  void wrote(const object_id& id, std::uint64_t offset, std::uint64_t length) {
    for (const auto& w : touched)
      if (w.id == id && w.offset <= offset && offset - w.offset + length <= w.length) return;
    if (!touched.empty() && touched.back().id == id) {
      auto& last = touched.back();
      std::uint64_t lo = last.offset, end = last.offset + last.length;
      if (join_if_touching(lo, end, offset, offset + length)) {
        last.offset = lo;
        last.length = end - lo;
        return;
      }
    }
    touched.push_back({id, offset, length});
  }
  /// Every object handed out by cx.local, kept mapped until the call ends: a
  /// remove or resize meanwhile cannot pull memory from under mobile code.
  small_set<std::shared_ptr<const void>> pins;
  /// The object last handed out in place whole (pinned, and its bytes all
  /// admitted as a region; in a persistent store only a cx.view's, whose
  /// bytes are its read-only mapping): another cx.view of it in the same
  /// call is served from here without pinning, looking it up or admitting
  /// it again (runner::local), and sees the image the call pinned first
  /// even if the object has moved or gone since. Code that views an
  /// object's header and then its data asks for one object twice. A
  /// cx.local always asks the store, so that it fails (not_local) rather
  /// than write into an image the object has left.
  struct held_whole {
    bool held = false;
    object_id id;
    std::span<const std::byte> bytes;
  };
  held_whole last_whole;
  /// Copies cx.fetch made for the call (freed when it ends), each with its
  /// reservation against the node's memory limit (store::reserve).
  struct fetched_copy {
    std::vector<std::uint8_t> bytes;
    std::shared_ptr<const void> reserved;
  };
  std::vector<fetched_copy> fetched;
  /// Bounds-checked code only (its entry called ferry_bounds_enter): the
  /// entry's frame address; the call's stack region is the thread's stack
  /// below it. 0: the code is unchecked, and so are the runtime API's
  /// pointer arguments.
  std::uintptr_t stack_top = 0;
  /// The module's globals, as the JIT listed them (jit/contain.cpp).
  const void* module_regions = nullptr;
  /// Memory the runtime handed to the call that it may write: argument and
  /// result blocks, cx.local's bytes (ferry_local).
  region_set writable;
  /// Memory the runtime handed to the call to read only (ferry_bounds
  /// admits it, ferry_bounds_write does not): cx.view's bytes (ferry_view:
  /// in place, the object's own bytes on a memory store), cx.fetch copies,
  /// the node's strings.
  region_set read_only;
  /// Admit the `span` bytes at `lo` for the rest of the call, to be written
  /// (access::write) or only read.
  void admit(const void* lo, std::uint64_t span, access how) {
    (how == access::write ? writable : read_only).add(lo, span);
  }
  /// The regions ferry_bounds and ferry_bounds_write admitted last, of any
  /// kind (stack, module, handed out), looked at first: code whose checks are all calls (the
  /// JIT's fast tier) asks again for the same few regions at every access.
  /// Each remembers whether it may be written. Regions are only added
  /// during a call, so these stay valid until it ends. Filled in turn;
  /// {0, 0} admits nothing.
  struct recent_regions {
    static constexpr std::size_t kSize = 4;
    ferry_bounds_region at[kSize] = {};
    bool writable[kSize] = {};
    std::size_t next = 0;
    /// The one that holds the `size` bytes at `a`, and may be written if `how` writes.
    [[nodiscard]] const ferry_bounds_region* find(std::uint64_t a, std::uint64_t size, access how) const {
      for (std::size_t i = 0; i < kSize; ++i)
        if ((how == access::read || writable[i]) && region_set::holds(&at[i], a, size)) return &at[i];
      return nullptr;
    }
    void remember(const ferry_bounds_region& r, bool may_write) {
      at[next] = r;
      writable[next] = may_write;
      next = (next + 1) % kSize;
    }
  };
  mutable recent_regions recent;
};

/// Enter mobile code: `fn(cx, args, result)` with `args_size` bytes of
/// arguments and `result_size` of result, which bounds-checked code may
/// touch. 0 on success; else an errc value, with the reason in cx.failure
/// when the runtime API failed.
std::int32_t run_mobile(call_context& cx, const jit_function& fn, const void* args, std::uint64_t args_size,
                        void* result, std::uint64_t result_size);
/// The same for a host function of the calling process, entered through
/// its typed trampoline (runtime::invoke_with: a call automatic placement
/// runs in the caller).
std::int32_t run_mobile(call_context& cx, std::int32_t (*native)(const void*, ferry_context*, const void*, void*),
                        const void* fn, const void* args, void* result);

/// A call run in place (on the thread that drives `member`) may turn out
/// long: have it send `member`'s heartbeats as they fall due while it runs
/// (call_context::while_running), or the node's peers would declare the
/// node dead. On any other thread: nothing.
void keep_beating(call_context& cx, session::member& member);

}  // namespace ferry::exec
