/* A pure ifunc (the prototype's pure.c): no external symbols; it reaches the
 * target only through the function pointer target_args carries. Static
 * variables, constant and mutable, travel with it. */
#include <stddef.h>
#include <stdint.h>

#include "ifunc_test.h"

static float f_gs = 3.141f;
static const float f_gsc = 3.141f;

static uint8_t xor_all(const uint8_t *data, size_t size)
{
    uint8_t r = 0;
    for (size_t i = 0; i < size; i++) {
        r ^= data[i];
    }
    return r;
}

size_t pure_payload_bound(void *source_args, size_t source_args_size)
{
    (void)source_args;
    return source_args_size;
}

int pure_payload_init(void *source_args, size_t source_args_size, void *payload, size_t *payload_size)
{
    (void)source_args_size;
    for (size_t i = 0; i < *payload_size; i++) {
        ((uint8_t *)payload)[i] = ((const uint8_t *)source_args)[i];
    }
    return 0;
}

void pure_main(void *payload, size_t payload_size, void *target_args)
{
    static float f_fs = 2.718f;
    pure_entry_f entry = (pure_entry_f)target_args;
    const uint8_t r = entry(xor_all((const uint8_t *)payload, payload_size), &f_gs);
    entry(r, &f_gsc);
    entry(r, &f_fs);
    f_gs = -1.5f; /* statics are writable */
    entry(r, &f_gs);
}
