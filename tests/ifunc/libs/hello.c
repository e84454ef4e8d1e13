/* Hello ifunc: writes what it received into target_args. A global variable
 * and a helper function travel with it (the prototype's hello.c checks). */
#include <stddef.h>
#include <stdint.h>

#include "ifunc_test.h"

size_t global_var = 42;

uint64_t fib(uint64_t n) { return n < 2 ? 1 : fib(n - 1) + fib(n - 2); }

size_t hello_payload_bound(void *source_args, size_t source_args_size)
{
    (void)source_args;
    return source_args_size;
}

int hello_payload_init(void *source_args, size_t source_args_size, void *payload, size_t *payload_size)
{
    size_t n = source_args_size < *payload_size ? source_args_size : *payload_size;
    for (size_t i = 0; i < n; i++) {
        ((uint8_t *)payload)[i] = ((const uint8_t *)source_args)[i];
    }
    *payload_size = n;
    return 0;
}

void hello_main(void *payload, size_t payload_size, void *target_args)
{
    hello_target_t *t = (hello_target_t *)target_args;
    uint64_t sum = 0;
    for (size_t i = 0; i < payload_size; i++) {
        sum += ((const uint8_t *)payload)[i];
    }
    size_t n = payload_size < sizeof(t->text) - 1 ? payload_size : sizeof(t->text) - 1;
    for (size_t i = 0; i < n; i++) {
        t->text[i] = ((const char *)payload)[i];
    }
    t->text[n] = '\0';
    t->payload_size = payload_size;
    t->byte_sum = sum;
    t->fib = fib(17) + global_var;
    t->calls++;
}
