/* Recursive pointer chase (the prototype's chaser.c): follows `depth` links
 * of a table sharded over the server ranks, forwarding itself to the rank
 * that holds the next entry, and sends a `result` ifunc to the origin. */
#include <stddef.h>
#include <stdint.h>

#include "ifunc_test.h"

size_t chaser_payload_bound(void *source_args, size_t source_args_size)
{
    (void)source_args;
    return source_args_size;
}

int chaser_payload_init(void *source_args, size_t source_args_size, void *payload, size_t *payload_size)
{
    (void)source_args_size;
    (void)payload_size;
    *(chase_args_t *)payload = *(const chase_args_t *)source_args;
    return 0;
}

void chaser_main(void *payload, size_t payload_size, void *target_args)
{
    (void)payload_size;
    chase_target_t *t = (chase_target_t *)target_args;
    chase_args_t a = *(const chase_args_t *)payload;
    const uint64_t total = t->shard_size * (uint64_t)t->servers;
    t->hops++;
    int owner = (int)(a.addr % total / t->shard_size) + 1;
    while (owner == t->rank) { /* local entries: follow them here */
        a.addr = t->shard[a.addr % total % t->shard_size] % total;
        if (--a.depth == 0) {
            uint64_t *result;
            ucp_ifunc_msg_get_payload_ptr(&t->result_msg, (void **)&result, NULL);
            *result = a.addr;
            ucp_ifunc_send_nbix(t->ep[a.origin], t->result_msg, t->heap[a.origin], t->rkey[a.origin]);
            t->flush(t->worker, t->ep[a.origin]);
            return;
        }
        owner = (int)(a.addr / t->shard_size) + 1;
    }
    chase_args_t *next;
    ucp_ifunc_msg_get_payload_ptr(&t->chaser_msg, (void **)&next, NULL);
    *next = a;
    ucp_ifunc_send_nbix(t->ep[owner], t->chaser_msg, t->heap[owner], t->rkey[owner]);
    t->flush(t->worker, t->ep[owner]);
}
