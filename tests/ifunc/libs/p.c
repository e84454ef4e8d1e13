/* Ping-pong started from inside p_main (the prototype's p.c): every run
 * sends the same message back and counts. */
#include <stddef.h>

#include "ifunc_test.h"

size_t p_payload_bound(void *source_args, size_t source_args_size)
{
    (void)source_args;
    return source_args_size;
}

int p_payload_init(void *source_args, size_t source_args_size, void *payload, size_t *payload_size)
{
    (void)source_args;
    (void)source_args_size;
    (void)payload;
    (void)payload_size;
    return 0;
}

void p_main(void *payload, size_t payload_size, void *target_args)
{
    (void)payload;
    (void)payload_size;
    pp_args_t *args = (pp_args_t *)target_args;
    ucp_ifunc_send_nbix(args->ep, args->im, args->heap_aslr, args->rmt_rkey);
    args->counter += 1;
    args->flush(false);
}
