/*
 * ferry's UCX ifunc compat header (docs/ifunc.md).
 *
 * Sources written for the UCX ifunc prototype (the `ifunc` branch of
 * openucx/three-chains) include <ucp/api/ucp.h> and call the ifunc API. With
 * this directory first on the include path (find_package(ferry), target
 * ferry::ucp_ifunc) that include finds this file: it includes the real UCX
 * header of the system's stock UCX and adds the ifunc API, implemented by
 * libferry_ucp_ifunc with ferry's code objects and JIT.
 *
 * Only bitcode ifuncs exist: NAME.<triple>.bc and NAME.deps, as
 * `ferry ifunc build NAME.c` writes them. A registration that asks for the
 * prototype's shared-object mode (llvm_bc = 0) loads the bitcode too.
 *
 * An ifunc library is one C file with three functions:
 *   size_t NAME_payload_bound(void *source_args, size_t source_args_size);
 *   int    NAME_payload_init(void *source_args, size_t source_args_size,
 *                            void *payload, size_t *payload_size);
 *   void   NAME_main(void *payload, size_t payload_size, void *target_args);
 */
#ifndef FERRY_UCP_IFUNC_COMPAT_H_
#define FERRY_UCP_IFUNC_COMPAT_H_

#include_next <ucp/api/ucp.h>

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @brief A registered ifunc: an opaque handle, valid until it is deregistered.
 *
 * Handles are never reused within a process, so a handle used after its
 * deregistration is detected, never mistaken for another ifunc.
 */
typedef struct ucp_ifunc *ucp_ifunc_h;

/**
 * @brief An ifunc message, made by ucp_ifunc_msg_create and freed by
 * ucp_ifunc_msg_free.
 *
 * @a frame is the message as later sends carry it; @a frame_size is the
 * bytes the first send to an endpoint carries (it includes the code). The
 * target buffer must hold @a frame_size bytes.
 */
typedef struct ucp_ifunc_msg {
    ucp_ifunc_h ifunc_h;
    void       *frame;
    size_t      frame_size;
} ucp_ifunc_msg_t;

/**
 * @brief Registration parameters of an ifunc library.
 */
typedef struct {
    /** Name of the ifunc: NAME of NAME_main. Any length. */
    char *name;
    /**
     * True: the ifunc calls no external symbols but ferry's allow-list
     * (memory, string and math functions) and this ifunc API; anything else
     * is refused when it is registered (UCS_ERR_REJECTED).
     */
    int pure;
    /** Ignored: every ifunc is LLVM bitcode. */
    int llvm_bc;
} ucp_ifunc_reg_param_t;

/**
 * @brief An in-memory bitcode, its target triple and its size.
 */
typedef struct {
    char *triple;  /**< informative: the triple is read from the bitcode */
    void *bc;      /**< the bitcode */
    uint32_t size; /**< its size in bytes */
} ucp_llvm_bc_t;

/**
 * @brief Register the ifunc library @a param.name.
 *
 * Reads NAME.<triple>.bc (one file per target) and NAME.deps from the
 * directory $FERRY_IFUNC_LIB_DIR, else $UCX_IFUNC_LIB_DIR as the prototype
 * (stock UCX warns it does not know that variable), else the current
 * directory. JIT-compiles
 * the bitcode for this machine and finds the three functions. Registering
 * the same library again in the same context returns the same handle.
 *
 * @return UCS_OK; UCS_ERR_NO_ELEM (no bitcode file), UCS_ERR_INVALID_PARAM
 *         (a file that is not bitcode, bitcode that does not parse, a
 *         missing NAME_main, NAME_payload_bound or NAME_payload_init),
 *         UCS_ERR_REJECTED (a pure ifunc calls what it may not),
 *         UCS_ERR_UNSUPPORTED (no bitcode for this machine), UCS_ERR_IO_ERROR
 *         (a dependency does not load). ferry_ucp_ifunc_last_error() says why.
 */
ucs_status_t ucp_register_ifunc(ucp_context_h context, ucp_ifunc_reg_param_t param, ucp_ifunc_h *ifunc_p);

/**
 * @brief Register an ifunc from in-memory bitcode (one buffer per target)
 * and dependencies. Errors as ucp_register_ifunc. @a param.pure counts, as
 * for ucp_register_ifunc (the prototype derived it from @a n_deps == 0).
 */
ucs_status_t ucp_register_ifunc_im(ucp_context_h context, ucp_ifunc_reg_param_t param, ucp_llvm_bc_t *bcs,
                                   int n_bcs, char **deps, int n_deps, ucp_ifunc_h *ifunc_p);

/**
 * @brief Deregister an ifunc: its code is unloaded once no message of it
 * exists and no NAME_main of it runs. Deregistering a handle that is not
 * registered (twice, or never) changes nothing and is reported on stderr;
 * ferry_ucp_deregister_ifunc returns it as UCS_ERR_NO_ELEM.
 */
void ucp_deregister_ifunc(ucp_context_h context, ucp_ifunc_h ifunc_h);

/**
 * @brief Create a message of @a ifunc_h for @a source_args: calls
 * NAME_payload_bound, allocates the message, calls NAME_payload_init on its
 * payload. Payloads of any size.
 *
 * @return UCS_OK; UCS_ERR_CANCELED if NAME_payload_init returned non-zero;
 *         UCS_ERR_EXCEEDS_LIMIT if it reported more payload than
 *         NAME_payload_bound allowed; UCS_ERR_NO_ELEM for a handle that is
 *         not registered; UCS_ERR_NO_MEMORY.
 */
ucs_status_t ucp_ifunc_msg_create(ucp_ifunc_h ifunc_h, void *source_args, size_t source_args_size,
                                  ucp_ifunc_msg_t *msg_p);

/**
 * @brief The payload of a message: where to write before sending it again.
 * @a payload_size may be NULL.
 */
ucs_status_t ucp_ifunc_msg_get_payload_ptr(ucp_ifunc_msg_t *msg_p, void **payload, size_t *payload_size);

/**
 * @brief Free a message (after the sends that carry it completed: flush).
 */
void ucp_ifunc_msg_free(ucp_ifunc_msg_t msg);

/**
 * @brief Put @a msg into the peer's memory at @a remote_addr (@a rkey), as
 * ucp_put_nbi does: complete it with a flush before changing or freeing the
 * message. The first send to an endpoint carries the code; later ones only
 * the payload (with FERRY_IFUNC_SEND_CODE=always, every send carries it).
 *
 * @return the status of the put (UCS_OK or UCS_INPROGRESS on success).
 */
ucs_status_t ucp_ifunc_send_nbix(ucp_ep_h ep, ucp_ifunc_msg_t msg, uint64_t remote_addr, ucp_rkey_h rkey);

/**
 * @brief Check @a buffer for a message and run it.
 *
 * Returns UCS_ERR_NO_MESSAGE (after progressing @a worker) while no whole
 * message is there. A whole message is taken (its signal cleared) and its
 * NAME_main runs with @a target_args; an ifunc this context has not
 * registered is registered from the code the message carries. The buffer
 * must be 8-aligned.
 *
 * @return UCS_OK (a message ran); UCS_ERR_NO_MESSAGE; UCS_ERR_BUFFER_TOO_SMALL
 *         (the message is larger than @a buffer_size: it is dropped, nothing
 *         past the buffer is read); UCS_ERR_NO_ELEM (a message without code
 *         for an ifunc this context does not have: never registered or
 *         deregistered; the sender can resend with
 *         FERRY_IFUNC_SEND_CODE=always); UCS_ERR_INVALID_PARAM (a malformed
 *         message, or a bad buffer); registration errors for shipped code.
 */
ucs_status_t ucp_poll_ifunc(ucp_context_h context, void *buffer, size_t buffer_size, void *target_args,
                            ucp_worker_h worker);

/* ---- ferry extensions (not in the prototype) ---------------------------- */

/** @brief ucp_deregister_ifunc with a status: UCS_ERR_NO_ELEM if @a ifunc_h
 *  is not registered. */
ucs_status_t ferry_ucp_deregister_ifunc(ucp_context_h context, ucp_ifunc_h ifunc_h);

/** @brief Why the calling thread's last failed ifunc call failed ("" if
 *  none failed yet): ferry's error kind and message. */
const char *ferry_ucp_ifunc_last_error(void);

#ifdef __cplusplus
}
#endif

#endif /* FERRY_UCP_IFUNC_COMPAT_H_ */
