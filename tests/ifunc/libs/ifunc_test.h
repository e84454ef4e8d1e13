/* What the test ifunc libraries and their host (ifunc_host.cpp) share: the
 * target_args each ifunc is given. Plain C, as in the prototype's
 * pointer_chase.h. */
#ifndef FERRY_TESTS_IFUNC_TEST_H_
#define FERRY_TESTS_IFUNC_TEST_H_

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ucp/api/ucp.h>

/* hello: what hello_main writes. */
typedef struct hello_target {
    uint64_t calls;
    uint64_t payload_size;
    uint64_t byte_sum;  /* sum of the payload's bytes */
    uint64_t fib;       /* fib(17) + global_var, computed by the shipped code */
    char text[64];      /* the payload's first bytes */
} hello_target_t;

/* pure: the host's function pure_main calls through target_args. */
typedef uint8_t (*pure_entry_f)(uint8_t n, const float *f);

/* chaser / result / stop: the pointer chase. */
typedef struct chase_args {
    uint64_t depth;
    uint64_t addr;
    uint64_t origin;  /* rank the result goes to */
} chase_args_t;

#define CHASE_MAX_RANKS 8
typedef struct chase_target {
    int rank;                 /* 1..servers; rank 0 is the origin */
    int servers;
    uint64_t shard_size;
    uint64_t *shard;          /* this rank's entries */
    ucp_worker_h worker;
    ucp_ep_h ep[CHASE_MAX_RANKS];
    ucp_rkey_h rkey[CHASE_MAX_RANKS];
    uint64_t heap[CHASE_MAX_RANKS];  /* each rank's receive slot */
    ucp_ifunc_msg_t chaser_msg;
    ucp_ifunc_msg_t result_msg;
    ucs_status_t (*flush)(ucp_worker_h, ucp_ep_h);
    uint64_t hops;            /* chaser_main runs here */
    bool run;                 /* stop_main clears it */
} chase_target_t;

/* p: the ping-pong started from inside p_main (the prototype's pp_args_t). */
typedef struct pp_args {
    size_t counter;
    ucp_ep_h ep;
    ucp_ifunc_msg_t im;
    uint64_t heap_aslr;
    ucp_rkey_h rmt_rkey;
    ucs_status_t (*flush)(bool);
} pp_args_t;

#endif
