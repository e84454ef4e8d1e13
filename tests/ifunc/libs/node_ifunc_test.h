/* What the ifunc libraries for ferry nodes (<ferry/ifunc.h>) and their test
 * (tests/ifunc/test_ifunc_nodes.cpp) share: the layout of the ferry objects
 * NAME_main gets as target_args on a node, and the payloads. */
#ifndef FERRY_TESTS_NODE_IFUNC_TEST_H_
#define FERRY_TESTS_NODE_IFUNC_TEST_H_

#include <stdint.h>

#include <ferry/ifunc.h>

/* node_chaser: one object per node, its shard of the table. */
#define NODE_CHASE_MAX_NODES 8
typedef struct node_shard {
    uint64_t nodes;
    uint64_t shard_size;                   /* entries per node */
    uint64_t hops;                         /* node_chaser_main ran here */
    ferry_ref shard[NODE_CHASE_MAX_NODES]; /* every node's shard object */
    uint64_t entries[];                    /* this node's: entry i holds the next address */
} node_shard_t;

typedef struct node_chase_args {
    uint64_t depth;
    uint64_t addr;
} node_chase_args_t;

/* node_pp: two nodes, each with a counter object (uint64_t). */
typedef struct node_pp_args {
    uint64_t rounds; /* NAME_main runs in all */
    uint64_t turn;   /* runs so far */
    uint32_t node[2];
    ferry_ref counter[2];
} node_pp_args_t;

#endif
