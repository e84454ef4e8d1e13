/* The pointer chase as an ifunc on ferry nodes (<ferry/ifunc.h>; `ferry
 * bench ifunc`, mode ifunc-nodes): follows next = table[next] while the
 * entry is in this node's shard (target_args: its shard object), then sends
 * itself, from inside nchase_main, to the node that holds the next one; at
 * the end it goes back to the origin, where it records the answer. The same
 * walk as xchase.c (through the UCX compat API) and as the `ferry` mode's
 * forwarded call (chase.cpp). */
#include <stddef.h>
#include <stdint.h>

#include "nchase.h"

size_t nchase_payload_bound(void *source_args, size_t source_args_size)
{
    (void)source_args;
    return source_args_size;
}

int nchase_payload_init(void *source_args, size_t source_args_size, void *payload, size_t *payload_size)
{
    if (source_args_size != sizeof(nchase_args_t)) return 1;
    *(nchase_args_t *)payload = *(const nchase_args_t *)source_args;
    *payload_size = sizeof(nchase_args_t);
    return 0;
}

static void send_on(const ferry_ifunc_here_info *here, nchase_args_t *a, const ferry_ifunc_send_params *where)
{
    ferry_ifunc_msg msg;
    if (ferry_ifunc_msg_create(here->context, here->self, a, sizeof *a, &msg) != 0) return;
    ferry_ifunc_send(here->context, &msg, where);
    ferry_ifunc_msg_free(&msg);
}

void nchase_main(void *payload, size_t payload_size, void *target_args)
{
    ferry_ifunc_here_info here;
    nchase_args_t a;
    if (payload_size != sizeof a || ferry_ifunc_here(&here) != 0) return;
    a = *(const nchase_args_t *)payload;
    if (here.member == here.origin) { /* the origin: the chase ended */
        nchase_answer_t *answer = (nchase_answer_t *)target_args;
        answer->args = a;
        answer->answered = 1;
        return;
    }
    const nchase_shard_t *t = (const nchase_shard_t *)target_args;
    for (; a.depth > 0; --a.depth) {
        const uint32_t owner = (uint32_t)(a.index % t->shards);
        if (owner != here.member) {
            ferry_ifunc_send_params next = {.field_mask = FERRY_IFUNC_SEND_FIELD_NODE | FERRY_IFUNC_SEND_FIELD_TARGET,
                                            .node = owner,
                                            .target = t->all[owner]};
            send_on(&here, &a, &next);
            return;
        }
        a.index = t->slot[a.index / t->shards];
    }
    ferry_ifunc_send_params back = {.field_mask = FERRY_IFUNC_SEND_FIELD_ORIGIN};
    send_on(&here, &a, &back);
}
