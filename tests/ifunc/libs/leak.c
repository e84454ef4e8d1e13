/* Calls getenv: registered as pure it must be refused (ferry's allow-list);
 * registered as not pure it links. */
#include <stddef.h>
#include <stdlib.h>

size_t leak_payload_bound(void *source_args, size_t source_args_size)
{
    (void)source_args;
    return source_args_size;
}

int leak_payload_init(void *source_args, size_t source_args_size, void *payload, size_t *payload_size)
{
    (void)source_args;
    (void)source_args_size;
    (void)payload;
    (void)payload_size;
    return 0;
}

void leak_main(void *payload, size_t payload_size, void *target_args)
{
    (void)payload;
    (void)payload_size;
    *(const char **)target_args = getenv("HOME");
}
