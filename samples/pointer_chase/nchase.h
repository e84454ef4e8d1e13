/* The pointer chase through ferry's own ifunc API (<ferry/ifunc.h>) on
 * ferry nodes (`ferry bench ifunc`, mode ifunc-nodes): what nchase.c and
 * its host (pointer_chase.cpp) share. Plain C. */
#ifndef FERRY_SAMPLES_NCHASE_H_
#define FERRY_SAMPLES_NCHASE_H_

#include <stdint.h>

#include <ferry/ifunc.h>

/* The payload: where the chase is and how far it still goes. */
typedef struct nchase_args {
    uint64_t index;
    uint32_t depth;
    uint32_t tag;
} nchase_args_t;

/* A shard object, as the `ferry` mode stores it (chase_shard in chase.hpp:
 * the same bytes): shard s is on node s and holds entry i with
 * i % shards == s at slot i / shards; `all` names every shard object. */
#define NCHASE_MAX_SHARDS 16
typedef struct nchase_shard {
    uint32_t shards;
    uint32_t self;     /* this shard's index (chase_shard::self) */
    uint64_t slots;
    ferry_ref all[NCHASE_MAX_SHARDS];
    uint64_t slot[];
} nchase_shard_t;

/* The origin's target_args: nchase_main there records the answer. */
typedef struct nchase_answer {
    nchase_args_t args;
    uint32_t answered;
} nchase_answer_t;

#endif
