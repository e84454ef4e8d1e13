/* The recursive pointer chase on ferry nodes (chaser.c through
 * <ferry/ifunc.h>): follows `depth` links of a table sharded over the nodes,
 * sending itself to the node that holds the next entry (target_args there:
 * that node's shard object), and sends a `result` ifunc (result.c, which
 * the origin installed on every node) back to the origin. */
#include <stddef.h>
#include <stdint.h>

#include "node_ifunc_test.h"

size_t node_chaser_payload_bound(void *source_args, size_t source_args_size)
{
    (void)source_args;
    return source_args_size;
}

int node_chaser_payload_init(void *source_args, size_t source_args_size, void *payload, size_t *payload_size)
{
    (void)source_args_size;
    (void)payload_size;
    *(node_chase_args_t *)payload = *(const node_chase_args_t *)source_args;
    return 0;
}

static void send_to(ferry_ifunc_here_info *here, ferry_ifunc_h fn, void *args, size_t size,
                    const ferry_ifunc_send_params *where)
{
    ferry_ifunc_msg msg;
    if (ferry_ifunc_msg_create(here->context, fn, args, size, &msg) != 0) {
        return;
    }
    ferry_ifunc_send(here->context, &msg, where);
    ferry_ifunc_msg_free(&msg);
}

void node_chaser_main(void *payload, size_t payload_size, void *target_args)
{
    (void)payload_size;
    node_shard_t *t = (node_shard_t *)target_args;
    node_chase_args_t a = *(const node_chase_args_t *)payload;
    ferry_ifunc_here_info here;
    if (ferry_ifunc_here(&here) != 0) {
        return;
    }
    const uint64_t total = t->shard_size * t->nodes;
    t->hops++;
    uint64_t owner = a.addr % total / t->shard_size;
    while (owner == here.member) { /* local entries: follow them here */
        a.addr = t->entries[a.addr % total % t->shard_size] % total;
        if (--a.depth == 0) {
            ferry_ifunc_register_params rp = {.field_mask = FERRY_IFUNC_REGISTER_FIELD_NAME, .name = "result"};
            ferry_ifunc_h result;
            if (ferry_ifunc_register(here.context, &rp, &result) != 0) {
                return;
            }
            ferry_ifunc_send_params back = {.field_mask = FERRY_IFUNC_SEND_FIELD_ORIGIN};
            send_to(&here, result, &a.addr, sizeof a.addr, &back);
            return;
        }
        owner = a.addr / t->shard_size;
    }
    ferry_ifunc_send_params next = {.field_mask = FERRY_IFUNC_SEND_FIELD_NODE | FERRY_IFUNC_SEND_FIELD_TARGET,
                                    .node = (uint32_t)owner,
                                    .target = t->shard[owner]};
    send_to(&here, here.self, &a, sizeof a, &next);
}
