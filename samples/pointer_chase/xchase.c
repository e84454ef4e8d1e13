/* The pointer chase as a UCX ifunc (`ferry bench ifunc`): follows
 * next = table[next] while the entry is in this process's shard, then sends
 * itself on to the server that holds the next one, from inside xchase_main;
 * at the end it goes to the client, where it records the answer. The same
 * walk as the `am` baseline's pre-deployed handler (raw_chase.cpp). */
#include <stddef.h>
#include <stdint.h>

#include "ifunc_chase.h"

size_t xchase_payload_bound(void *source_args, size_t source_args_size)
{
    (void)source_args;
    return source_args_size;
}

int xchase_payload_init(void *source_args, size_t source_args_size, void *payload, size_t *payload_size)
{
    if (source_args_size != sizeof(xchase_args_t)) return 1;
    *(xchase_args_t *)payload = *(const xchase_args_t *)source_args;
    *payload_size = sizeof(xchase_args_t);
    return 0;
}

static void send_on(xchase_target_t *t, uint32_t peer, const xchase_args_t *a)
{
    xchase_args_t *next;
    ucp_ifunc_msg_get_payload_ptr(&t->msg, (void **)&next, NULL);
    *next = *a;
    ucp_ifunc_send_nbix(t->ep[peer], t->msg, t->buffer[peer], t->rkey[peer]);
    t->flush(t->worker, t->ep[peer]);
}

void xchase_main(void *payload, size_t payload_size, void *target_args)
{
    xchase_target_t *t = (xchase_target_t *)target_args;
    xchase_args_t a;
    if (payload_size != sizeof a) return;
    a = *(const xchase_args_t *)payload;
    if (t->slots == NULL) { /* the client: the chase ended */
        t->answer = a;
        t->answered = 1;
        return;
    }
    for (; a.depth > 0; --a.depth) {
        const uint32_t owner = (uint32_t)(a.index % t->shards);
        if (owner != t->index) {
            send_on(t, owner, &a);
            return;
        }
        a.index = t->slots[a.index / t->shards];
    }
    send_on(t, t->shards, &a);
}
