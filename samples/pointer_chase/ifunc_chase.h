/* The pointer chase as a UCX ifunc (`ifunc` mode, `ferry bench ifunc`):
 * what xchase.c and its host (raw_chase.cpp) share. Plain C, as an ifunc
 * library written for the UCX ifunc prototype would have it. */
#ifndef FERRY_SAMPLES_IFUNC_CHASE_H_
#define FERRY_SAMPLES_IFUNC_CHASE_H_

#include <stddef.h>
#include <stdint.h>

#include <ucp/api/ucp.h>

/* The payload: where the chase is and how far it still goes. `tag` tells
 * the client which chase an answer belongs to. */
typedef struct xchase_args {
    uint64_t index;
    uint32_t depth;
    uint32_t tag;
} xchase_args_t;

#define XCHASE_MAX_PEERS 17 /* chase_table::kMaxShards servers + the client */

/* Every process's target_args. Peers 0..shards-1 are the servers (shard s
 * is entry i with i % shards == s, at slot i / shards); peer `shards` is the
 * client. The client has no slots: xchase_main there records the answer. */
typedef struct xchase_target {
    uint32_t index;  /* this process's peer number */
    uint32_t shards;
    const uint64_t *slots; /* NULL on the client */
    ucp_worker_h worker;
    ucp_ep_h ep[XCHASE_MAX_PEERS];
    ucp_rkey_h rkey[XCHASE_MAX_PEERS];
    uint64_t buffer[XCHASE_MAX_PEERS]; /* each peer's ifunc receive buffer */
    ucp_ifunc_msg_t msg;               /* this process's xchase message, reused */
    ucs_status_t (*flush)(ucp_worker_h, ucp_ep_h); /* completes a send */
    xchase_args_t answer; /* the client: the last answer */
    uint32_t answered;    /* the client: xchase_main ran */
} xchase_target_t;

#endif
