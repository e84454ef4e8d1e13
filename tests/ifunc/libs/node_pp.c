/* Ping-pong started from inside NAME_main (p.c through <ferry/ifunc.h>):
 * each run counts in its node's counter object (target_args) and sends
 * itself to the other node, `rounds` runs in all; the last sends a `result`
 * ifunc (result.c) with the number of runs back to the origin. */
#include <stddef.h>
#include <stdint.h>

#include "node_ifunc_test.h"

size_t node_pp_payload_bound(void *source_args, size_t source_args_size)
{
    (void)source_args;
    return source_args_size;
}

int node_pp_payload_init(void *source_args, size_t source_args_size, void *payload, size_t *payload_size)
{
    (void)source_args_size;
    (void)payload_size;
    *(node_pp_args_t *)payload = *(const node_pp_args_t *)source_args;
    return 0;
}

void node_pp_main(void *payload, size_t payload_size, void *target_args)
{
    (void)payload_size;
    node_pp_args_t a = *(const node_pp_args_t *)payload;
    ferry_ifunc_here_info here;
    if (ferry_ifunc_here(&here) != 0) {
        return;
    }
    *(uint64_t *)target_args += 1;
    a.turn++;
    ferry_ifunc_msg msg;
    if (a.turn == a.rounds) {
        ferry_ifunc_register_params rp = {.field_mask = FERRY_IFUNC_REGISTER_FIELD_NAME, .name = "result"};
        ferry_ifunc_h result;
        if (ferry_ifunc_register(here.context, &rp, &result) != 0 ||
            ferry_ifunc_msg_create(here.context, result, &a.turn, sizeof a.turn, &msg) != 0) {
            return;
        }
        ferry_ifunc_send_params back = {.field_mask = FERRY_IFUNC_SEND_FIELD_ORIGIN};
        ferry_ifunc_send(here.context, &msg, &back);
        ferry_ifunc_msg_free(&msg);
        return;
    }
    if (ferry_ifunc_msg_create(here.context, here.self, &a, sizeof a, &msg) != 0) {
        return;
    }
    const int next = (int)(a.turn % 2);
    ferry_ifunc_send_params where = {.field_mask = FERRY_IFUNC_SEND_FIELD_NODE | FERRY_IFUNC_SEND_FIELD_TARGET,
                                     .node = a.node[next],
                                     .target = a.counter[next]};
    ferry_ifunc_send(here.context, &msg, &where);
    ferry_ifunc_msg_free(&msg);
}
