/* ferry/ferry.h — the C surface of mobile code.
 *
 * Mark a function mobile:
 *
 *     #include <ferry/ferry.h>
 *     FERRY_MOBILE uint64_t sum(ferry_context* cx, ferry_ref table, uint64_t n);
 *
 * FERRY_MOBILE expands to `__attribute__((ferry_mobile))`; with clang's C2x
 * attributes `[[ferry::mobile]]` works too. Compile with the ferry plugin
 * (`-fplugin=libferry-plugin.so`, arranged by ferry_add_mobile() in CMake);
 * without it the attribute is ignored with a warning and the code stays plain C.
 * GCC never loads the plugin (ferry_add_mobile() compiles the code objects
 * with ferry's clang 19 instead): GCC 12+ is told below to ignore the
 * attribute silently, so -Wall -Werror builds are not broken by it.
 *
 * Rules the plugin enforces at compile time (docs/plugin.md): the first
 * parameter is `ferry_context*`; the others are trivially copyable values or
 * ferry_ref; the result is trivially copyable or void; no variadics.
 *
 * The functions below are the runtime API mobile code may call. They are on
 * the JIT's allow-list; everything else outside libc/libm's small allowed
 * set is refused.
 */
#ifndef FERRY_FERRY_H
#define FERRY_FERRY_H

#include <stdint.h>

#include <ferry/export.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FERRY_MOBILE __attribute__((ferry_mobile))

#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic ignored_attributes "ferry::mobile"
#pragma GCC diagnostic ignored_attributes "gnu::ferry_mobile"
#endif

/** Execution context of one mobile call: opaque, valid during the call. */
typedef struct ferry_context ferry_context;

/** Global reference: object id (hi, lo) + byte offset. 24 bytes; the same
 *  layout as ferry::ref<T> in C++. */
typedef struct ferry_ref {
  uint64_t id_hi;
  uint64_t id_lo;
  uint64_t offset;
} ferry_ref;

/** Uniform entry every code object defines (see <ferry/code_object.hpp>). */
typedef int32_t (*ferry_entry_fn)(ferry_context* cx, const void* args, void* result);

/** Pointer to `size` local bytes at `r`. If the object is not on this node or
 *  the range is outside it, the call ends right there (this function does not
 *  return) and the caller receives the error (not_local / out_of_bounds).
 *  Write only these bytes through it: on a node that keeps objects in files
 *  they are what the node seals when the call ends, and there
 *  bounds-checked code that touches bytes past them ends with memory_fault. */
FERRY_API void* ferry_local(ferry_context* cx, const ferry_ref* r, uint64_t size);

/** Like ferry_local, for reading only: the node does not seal the object
 *  after the call (no checksum pass, no msync on a storage node), and the
 *  call may run on the node's network thread. On a node that keeps objects
 *  in files (`ferry node --store`), the bytes come from a read-only mapping:
 *  a write through them ends the call with memory_fault and leaves the
 *  object as it was. On a node that keeps objects in memory the bounds
 *  checks refuse such a write the same way (ferry_bounds_write); only a
 *  node without them (`--unchecked`) lets it through: do not write through
 *  this pointer. */
FERRY_API const void* ferry_view(ferry_context* cx, const ferry_ref* r, uint64_t size);

/** Copy `size` bytes at `r` into `out`, streamed from where this node keeps
 *  the object at rest: on a storage node (a file store) with O_DIRECT from
 *  its device, without mapping the object; from memory otherwise. For
 *  objects larger than what mobile code should map whole: read them in
 *  chunks. Fails like ferry_local (the call ends with not_local or
 *  out_of_bounds), or with io_error. */
FERRY_API void ferry_read(ferry_context* cx, const ferry_ref* r, void* out, uint64_t size);

/** Continue at the node that owns `target`, calling mobile function `fn`
 *  with the packed argument block `args` (`args_size` bytes). The final
 *  result goes straight to the original caller; the current function's own
 *  return value is then ignored. Returns 0; if `fn` is not a mobile function
 *  the code references, the call ends with errc unknown_code. */
FERRY_API int32_t ferry_forward(ferry_context* cx, const void* fn, const ferry_ref* target, const void* args,
                      uint64_t args_size);

/** Nested call: run `fn` where `target` lives and wait for its result
 *  (`result_size` bytes into `result`). Returns 0; if the nested call fails,
 *  the whole call ends with its error. */
FERRY_API int32_t ferry_invoke(ferry_context* cx, const void* fn, const ferry_ref* target, const void* args,
                     uint64_t args_size, void* result, uint64_t result_size);

/** Pointers stored inside objects (ferry::ptr<T> in C++, docs/mobility.md):
 *  64 bits, FOT index (high 16) + offset (low 48); all bits set is null.
 *  A ptr means something only together with the object that holds it: its
 *  FOT index names a slot of the holder's foreign object table. */

/** The global reference that ptr `ptr_bits`, stored in object `holder`,
 *  denotes, written to `*out`: the holder's FOT slot named by the ptr (0:
 *  the holder itself) and the ptr's offset. `holder` must be on this node.
 *  On failure the call ends (like ferry_local): not_local, invalid_argument
 *  (a null ptr), bad_fot_index (a slot the holder does not have). */
FERRY_API void ferry_resolve(ferry_context* cx, const ferry_ref* holder, uint64_t ptr_bits, ferry_ref* out);

/** A ptr to store inside object `holder` (on this node) that denotes
 *  `target`: adds `target`'s object to the holder's FOT if it is not there
 *  yet. On failure the call ends: not_local, out_of_bounds (an offset past
 *  48 bits), too_large (the FOT is full). */
FERRY_API uint64_t ferry_make_ptr(ferry_context* cx, const ferry_ref* holder, const ferry_ref* target);

/** Pull on demand: a read-only copy of the `size` bytes at `r`, wherever
 *  the object lives (this node: copied from the store; elsewhere: fetched
 *  from its owner, the caller waiting). The memory belongs to the call and
 *  is freed when it ends; bounds-checked code may not write it
 *  (memory_fault). On failure the call ends: not_found,
 *  out_of_bounds, too_large (more than 64 MiB), timeout, peer_dead. */
FERRY_API const void* ferry_fetch(ferry_context* cx, const ferry_ref* r, uint64_t size);

/** Move object `r` names to node `node` (rt.objects().migrate from mobile
 *  code): returns once the new owner holds it; calls in flight complete
 *  exactly once (docs/mobility.md, "Migration"). The caller waits, so the
 *  call runs on an executor. The object the call is routed by cannot be
 *  moved from inside it (the move waits for the call to end). On failure the
 *  call ends: invalid_argument (that object, or no node `node`), not_found,
 *  peer_dead, timeout. */
FERRY_API void ferry_migrate(ferry_context* cx, const ferry_ref* r, uint32_t node);

/** Node kinds reported by ferry_node_kind(). */
enum ferry_node_kind { FERRY_NODE_HOST = 0, FERRY_NODE_DPU = 1, FERRY_NODE_STORAGE = 2 };

/** This node's index in the cluster, kind, target triple, and the CPU its
 *  JIT generates code for (e.g. "cortex-a72" on an emulated BlueField-2 DPU,
 *  `ferry node --cpu`; else the host CPU as LLVM detects it). */
FERRY_API uint32_t ferry_node_id(ferry_context* cx);
FERRY_API uint32_t ferry_node_kind(ferry_context* cx);
FERRY_API const char* ferry_node_triple(ferry_context* cx);
FERRY_API const char* ferry_node_cpu(ferry_context* cx);

/** Fuel accounting, called by code the receiving node's JIT inserts (never
 *  by hand) on the thread that runs the call: `units` of work were done (1
 *  per call of a function that calls others, a block of loop iterations at
 *  a time). When the call's fuel is used up or its deadline has passed, the
 *  call ends right there with errc fuel_exhausted or timeout
 *  (docs/security.md, "Metered code"). Outside a call (a JIT'd function run
 *  directly) it does nothing. */
FERRY_API void ferry_fuel(uint64_t units);

/** Bounds checks, called by code the receiving node's JIT inserts (never by
 *  hand; docs/security.md, "Bounds checks"). A region mobile code may
 *  touch: `span` bytes from address `lo`. */
typedef struct ferry_bounds_region {
  uint64_t lo;
  uint64_t span;
} ferry_bounds_region;

/** The region of the running call that holds the `size` bytes at
 *  `address`, which checked code reads — its stack below the entry's
 *  frame, a global of its module, or memory the runtime handed to the call
 *  (argument and result blocks, ferry_local, ferry_view and ferry_fetch
 *  ranges, node strings). If none does, the call ends right there with
 *  errc memory_fault. Outside a call it admits everything. */
FERRY_API ferry_bounds_region ferry_bounds(uint64_t address, uint64_t size);

/** The same for `size` bytes checked code writes (a store, an atomic, the
 *  destination of a copy or fill): only a region the call may write — its
 *  stack, its module's globals, its argument and result blocks, what
 *  ferry_local handed it. What ferry_view and ferry_fetch handed it and the
 *  node's strings are read-only to it: a write there ends the call with
 *  errc memory_fault, even where (a memory store's ferry_view) the bytes
 *  are the object's own in place. Outside a call it admits everything. */
FERRY_API ferry_bounds_region ferry_bounds_write(uint64_t address, uint64_t size);

/** What checked code calls at an access it computed from one of its own
 *  objects — a local array or variable of a fixed size, or a global its
 *  module defines (the JIT sees which) — at an offset known only at run
 *  time. It returns only if the `size` bytes at `address` lie inside the
 *  `object_bytes` bytes at `object`; if not, the call ends right there with
 *  errc memory_fault, wherever else the address points (another local, the
 *  frame's saved registers and return address, another global). Outside a
 *  call it returns. */
FERRY_API void ferry_bounds_object(uint64_t address, uint64_t size, uint64_t object, uint64_t object_bytes);

/** Called first by a checked entry: its frame address (the call's stack
 *  region ends there) and its module's globals (`module_regions`, a table
 *  the JIT put into the module). */
FERRY_API void ferry_bounds_enter(const void* frame, const void* module_regions);

/** What checked code calls instead of a call through a pointer that holds
 *  none of its module's address-taken functions (a forged or corrupted
 *  function pointer: another code object's function, the runtime, libc, the
 *  middle of a function). The call ends right there with errc memory_fault,
 *  before the jump. Outside a call it returns, and the call goes ahead. */
FERRY_API void ferry_bad_callee(uint64_t target);

/** What checked code calls (as `__stack_chk_fail`: the JIT links that name
 *  here) when a function is about to return and its stack canary changed:
 *  something overran a local array into the frame's saved registers and
 *  return address. The call ends right there with errc memory_fault,
 *  before that return can go anywhere. Outside a call it aborts the
 *  process, as libc's does. */
FERRY_API void ferry_stack_smashed(void);

#ifdef __cplusplus
}
#endif

#endif /* FERRY_FERRY_H */
