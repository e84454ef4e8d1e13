/* With an empty payload: counts once and returns (a short NAME_main, which a
 * node then runs in place on its network thread). With any payload: never
 * returns; on a ferry node the node's per-call fuel stops it
 * (fuel_exhausted), and the thread it held is free again. */
#include <stddef.h>
#include <stdint.h>

size_t spin_payload_bound(void *source_args, size_t source_args_size)
{
    (void)source_args;
    return source_args_size;
}

int spin_payload_init(void *source_args, size_t source_args_size, void *payload, size_t *payload_size)
{
    (void)source_args;
    (void)source_args_size;
    (void)payload;
    (void)payload_size;
    return 0;
}

void spin_main(void *payload, size_t payload_size, void *target_args)
{
    (void)payload;
    volatile uint64_t *count = (volatile uint64_t *)target_args;
    do {
        *count += 1;
    } while (payload_size != 0);
}
