/* Hostile: a few KiB of bitcode that declares a 256 MiB constant table
 * (zero-filled: the bitcode stays small; compiled, the table is real). */
#include <ferry/ferry.h>

static const unsigned char table[256u << 20];

int32_t ferry_test_hostile_entry(ferry_context* cx, const void* args, void* result) {
  (void)cx;
  /* volatile: the optimizer may not fold reads of the all-zero table away */
  *(int32_t*)result = *(const volatile unsigned char*)&table[*(const uint32_t*)args % sizeof table];
  return 0;
}
