/* ferry/ifunc.h — the UCX ifunc contract on ferry nodes.
 *
 * An ifunc library is one C file with three functions (docs/ifunc.md):
 *
 *     size_t NAME_payload_bound(void *source_args, size_t source_args_size);
 *     int    NAME_payload_init(void *source_args, size_t source_args_size,
 *                              void *payload, size_t *payload_size);  (non-zero aborts)
 *     void   NAME_main(void *payload, size_t payload_size, void *target_args);
 *
 * built with `ferry ifunc build NAME.c` (NAME.<triple>.bc, NAME.deps). The
 * same libraries run through the UCX compat API (<ucp/api/ucp.h>,
 * ferry::ucp_ifunc) and through this one, which sends them to ferry nodes
 * by node index instead of putting them into remote memory:
 *
 *     ferry::runtime rt(argc, argv);                 // this process's runtime
 *     ferry_ifunc_context *cx;
 *     ferry_ifunc_context_params cp = {.field_mask = 0};
 *     ferry_ifunc_context_create(&cp, &cx);
 *     ferry_ifunc_register_params rp = {.field_mask = FERRY_IFUNC_REGISTER_FIELD_NAME, .name = "hello"};
 *     ferry_ifunc_h hello;
 *     ferry_ifunc_register(cx, &rp, &hello);         // $FERRY_IFUNC_LIB_DIR/hello.*.bc
 *     ferry_ifunc_msg msg;
 *     ferry_ifunc_msg_create(cx, hello, text, strlen(text), &msg);
 *     ferry_ifunc_send_params sp = {.field_mask = FERRY_IFUNC_SEND_FIELD_NODE | FERRY_IFUNC_SEND_FIELD_TARGET,
 *                                   .node = 1, .target = target};   // a ferry_ref to an object on node 1
 *     ferry_ifunc_send(cx, &msg, &sp);               // hello_main runs on node 1
 *     ferry_ifunc_msg_free(&msg);
 *     ... ferry_ifunc_poll(cx, buffer, sizeof buffer, &my_state) ...  // ifuncs sent back here
 *     ... or ferry_ifunc_wait(cx, buffer, sizeof buffer, &my_state, 1000)  // the same, waiting up to 1 s
 *
 * Where NAME_main runs:
 * - On a node, as ferry runs mobile code (docs/security.md): in place on
 *   the node's network thread when the ifunc's previous NAME_main there was
 *   short (the node's in-place budget, as for short mobile calls), else on
 *   one of its executors; linked against ferry's allow-list only (whatever
 *   `pure` says; NAME.deps are not loaded there), metered (the node's
 *   per-call fuel), and contained: a fault or a used-up fuel ends that
 *   NAME_main with a typed error that the node reports to the origin
 *   context (its next ferry_ifunc_poll returns it); the node keeps serving.
 *   A node started with --trust-keys DIR registers only libraries signed
 *   by a key in DIR (`ferry sign --ifunc --key K LIBDIR/NAME` writes
 *   NAME.sig, read with the bitcode), and reports unsigned_code,
 *   untrusted_signer or bad_signature for the others.
 *   `target_args` is the bytes of the ferry object named by the send's
 *   `target` (an object on that node: the target's state), or NULL.
 * - In the origin program, inside ferry_ifunc_poll or ferry_ifunc_wait, on
 *   the polling thread, with the `target_args` it is given (as
 *   ucp_poll_ifunc).
 *
 * Inside NAME_main, ferry_ifunc_here() gives the context the message
 * belongs to, the running ifunc's handle and the origin, so NAME_main can
 * send (itself, or another ifunc registered in that context) to any node
 * or back to the origin: recursive sends, pointer chases, ping-pongs.
 *
 * A context is a scope, as a UCP context is for the compat API: it
 * registers ifuncs, and every node keeps the code it received for a
 * context apart from other contexts' (the same code is compiled once per
 * node). A message carries its code the first time its ifunc goes to a
 * member; a member that does not have it then (restarted) refuses it with
 * FERRY_IFUNC_STATUS unknown_code, reported to the origin.
 *
 * Errors: every function returns 0 or one of ferry's error kinds (the
 * values of ferry::errc in <ferry/status.hpp>, e.g. 2 not_found, 8
 * bad_format, 13 unknown_code, 19 cancelled, 21 too_large, 25
 * memory_fault); ferry_ifunc_last_error() says what happened, for the
 * calling thread. Parameter structs are extensible: set `field_mask` to the
 * fields you filled (FERRY_IFUNC_*_FIELD_*); later versions add fields at
 * the end, so zero-initialize the struct.
 *
 * Threads: every function may be called from any thread, and from inside
 * NAME_main. One ferry::runtime per program: contexts belong to the
 * runtime of the process (created before the first context).
 */
#ifndef FERRY_IFUNC_H
#define FERRY_IFUNC_H

#include <stddef.h>
#include <stdint.h>

#include <ferry/export.h>
#include <ferry/ferry.h>

#ifdef __cplusplus
extern "C" {
#endif

/** 0, or a ferry::errc value. */
typedef int32_t ferry_ifunc_status;
/** ferry_ifunc_poll: nothing to run (not an error). */
#define FERRY_IFUNC_NO_MESSAGE ((ferry_ifunc_status)-1)

/** A scope of registered ifuncs and the messages sent for it. */
typedef struct ferry_ifunc_context ferry_ifunc_context;
/** A registered ifunc: opaque, never reused within a process. */
typedef uint64_t ferry_ifunc_h;

/** A built message: its ifunc, its image (header, payload, trailer) and
 *  the size of its first send to a member (code included). */
typedef struct ferry_ifunc_msg {
  ferry_ifunc_h ifunc;
  void *frame;
  size_t frame_size;
} ferry_ifunc_msg;

/* ---- contexts ------------------------------------------------------- */

enum ferry_ifunc_context_field {
  FERRY_IFUNC_CONTEXT_FIELD_NAME = 1u << 0 /**< `name`: for error messages */
};
typedef struct ferry_ifunc_context_params {
  uint64_t field_mask;
  const char *name;
} ferry_ifunc_context_params;

/** A context of this process's ferry runtime. errc not_found when the
 *  process has no runtime (construct a ferry::runtime first). */
FERRY_API ferry_ifunc_status ferry_ifunc_context_create(const ferry_ifunc_context_params *params,
                                                        ferry_ifunc_context **context_p);
/** Deregister everything it registered and drop its queued messages. */
FERRY_API void ferry_ifunc_context_destroy(ferry_ifunc_context *context);

/* ---- registration --------------------------------------------------- */

/** One target's bitcode, in memory (ferry_ifunc_register with BITCODE). */
typedef struct ferry_ifunc_bitcode {
  const char *triple; /**< informative: the triple is read from the bitcode */
  const void *bitcode;
  size_t size;
} ferry_ifunc_bitcode;

enum ferry_ifunc_register_field {
  FERRY_IFUNC_REGISTER_FIELD_NAME = 1u << 0,    /**< `name` (required): NAME of NAME_main */
  FERRY_IFUNC_REGISTER_FIELD_LIB_DIR = 1u << 1, /**< `lib_dir`: where NAME.<triple>.bc and NAME.deps are */
  FERRY_IFUNC_REGISTER_FIELD_PURE = 1u << 2,    /**< `pure`: link against ferry's allow-list only */
  FERRY_IFUNC_REGISTER_FIELD_BITCODE = 1u << 3, /**< `bitcode`, `n_bitcode`: from memory */
  FERRY_IFUNC_REGISTER_FIELD_DEPS = 1u << 4     /**< `deps`, `n_deps`: with BITCODE, NAME.deps */
};
typedef struct ferry_ifunc_register_params {
  uint64_t field_mask;
  const char *name;
  const char *lib_dir;
  int pure;
  const ferry_ifunc_bitcode *bitcode;
  size_t n_bitcode;
  const char *const *deps;
  size_t n_deps;
} ferry_ifunc_register_params;

/** Register an ifunc in `context` and JIT-compile it here (its
 *  payload_bound and payload_init run here when messages are built).
 *  From files: `lib_dir`, else $FERRY_IFUNC_LIB_DIR, else the current
 *  directory. With only a NAME, an ifunc of that name already in the
 *  context is returned first (inside NAME_main on a node: the ifuncs the
 *  origin installed there, ferry_ifunc_send with FERRY_IFUNC_SEND_INSTALL;
 *  nodes read no library files). The same content again: the same handle.
 *  Errors: not_found (no NAME.<triple>.bc, or nothing of that name on a
 *  node), bad_format (not bitcode, a NAME.sig that is not a signature,
 *  or NAME_main / NAME_payload_bound / NAME_payload_init missing),
 *  no_matching_variant, policy_violation (a symbol outside ferry's
 *  allow-list), invalid_argument; on a node with trusted keys,
 *  unsigned_code, untrusted_signer, bad_signature. */
FERRY_API ferry_ifunc_status ferry_ifunc_register(ferry_ifunc_context *context,
                                                  const ferry_ifunc_register_params *params, ferry_ifunc_h *ifunc_p);
/** Deregister: its code is unloaded once no message of it exists and no
 *  NAME_main of it runs. not_found when it is not registered (twice). */
FERRY_API ferry_ifunc_status ferry_ifunc_deregister(ferry_ifunc_context *context, ferry_ifunc_h ifunc);

/* ---- messages ------------------------------------------------------- */

/** Build a message: NAME_payload_bound, then NAME_payload_init into a
 *  zeroed payload. Errors: not_found (handle not registered), cancelled
 *  (payload_init returned non-zero), out_of_bounds (it reported more than
 *  the bound), out_of_memory. */
FERRY_API ferry_ifunc_status ferry_ifunc_msg_create(ferry_ifunc_context *context, ferry_ifunc_h ifunc,
                                                    void *source_args, size_t source_args_size,
                                                    ferry_ifunc_msg *msg_p);
/** The payload (writable until the next send; sends copy it). */
FERRY_API ferry_ifunc_status ferry_ifunc_msg_get_payload_ptr(const ferry_ifunc_msg *msg, void **payload,
                                                             size_t *payload_size);
/** Free a message (sends have copied it: free it right after them). */
FERRY_API void ferry_ifunc_msg_free(ferry_ifunc_msg *msg);

enum ferry_ifunc_send_field {
  FERRY_IFUNC_SEND_FIELD_NODE = 1u << 0,   /**< `node`: the node index to send to */
  FERRY_IFUNC_SEND_FIELD_ORIGIN = 1u << 1, /**< send to the context's origin program (from a node) */
  FERRY_IFUNC_SEND_FIELD_TARGET = 1u << 2, /**< `target`: the object whose bytes are target_args there */
  FERRY_IFUNC_SEND_FIELD_FLAGS = 1u << 3   /**< `flags`: FERRY_IFUNC_SEND_* */
};
enum ferry_ifunc_send_flags {
  /** Register the message's ifunc at the node, in this context, without
   *  running it (so NAME_main there can find it by name). */
  FERRY_IFUNC_SEND_INSTALL = 1u << 0
};
typedef struct ferry_ifunc_send_params {
  uint64_t field_mask;
  uint32_t node;
  ferry_ref target;
  uint32_t flags;
} ferry_ifunc_send_params;

/** Send a message (a copy of it: the message stays the caller's) to a node
 *  or to the origin; with its code the first time its ifunc goes there.
 *  Returns when the frame is sent or queued; what NAME_main does there
 *  comes back only as what it sends (and failures, by poll). Errors:
 *  invalid_argument (no NODE nor ORIGIN, a node index out of range),
 *  peer_dead, not_found (a freed message's ifunc). */
FERRY_API ferry_ifunc_status ferry_ifunc_send(ferry_ifunc_context *context, const ferry_ifunc_msg *msg,
                                              const ferry_ifunc_send_params *params);

/* ---- polling -------------------------------------------------------- */

/** Take the next message sent to this program for `context` and run its
 *  NAME_main here, on the calling thread, with `target_args`: the message
 *  is copied into `buffer` (8-aligned; its payload is what NAME_main gets).
 *  Returns 0 when one ran, FERRY_IFUNC_NO_MESSAGE when nothing is there
 *  (it drives the runtime's progress once), or an error: too_large (the
 *  message does not fit `buffer_size`: dropped), unknown_code (an ifunc
 *  the context does not have, that came without its code), a failure a
 *  node reported for a message of this context (memory_fault,
 *  fuel_exhausted, not_local, unknown_code, ... : "node N: ..."), or a
 *  fault of NAME_main here (it ended; the program goes on). */
FERRY_API ferry_ifunc_status ferry_ifunc_poll(ferry_ifunc_context *context, void *buffer, size_t buffer_size,
                                              void *target_args);

/** ferry_ifunc_poll, waiting up to `timeout_ms` milliseconds for a message
 *  when none is there: it polls first (a message a few microseconds away
 *  is taken at once), then sleeps on the transport until a frame comes,
 *  as a call's future waits, so a program that waits for the end of a long
 *  walk of messages leaves the cores to the nodes doing it. Returns what
 *  ferry_ifunc_poll returns; FERRY_IFUNC_NO_MESSAGE when the time passed
 *  without one. 0 ms: the same as ferry_ifunc_poll. */
FERRY_API ferry_ifunc_status ferry_ifunc_wait(ferry_ifunc_context *context, void *buffer, size_t buffer_size,
                                              void *target_args, uint32_t timeout_ms);

/* ---- inside NAME_main ----------------------------------------------- */

typedef struct ferry_ifunc_here_info {
  ferry_ifunc_context *context; /**< the context the running message belongs to */
  ferry_ifunc_h self;           /**< the running ifunc, registered in `context` */
  uint32_t member;              /**< where it runs: a node index, or the origin's member index */
  uint32_t origin;              /**< the origin program's member index */
  uint32_t nodes;               /**< data nodes in the cluster */
} ferry_ifunc_here_info;

/** What the NAME_main running on this thread belongs to. not_found outside
 *  NAME_main. */
FERRY_API ferry_ifunc_status ferry_ifunc_here(ferry_ifunc_here_info *info);

/** What the last failing call of this thread said ("" if none). */
FERRY_API const char *ferry_ifunc_last_error(void);

#ifdef __cplusplus
}
#endif

#endif /* FERRY_IFUNC_H */
