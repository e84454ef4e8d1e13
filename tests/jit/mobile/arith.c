/* A small mobile function and its uniform entry (what the plugin will
 * generate), compiled both to bitcode (code objects) and natively (the
 * reference the tests compare against). */
#include <ferry/ferry.h>

int64_t ferry_test_mix(int64_t a, int64_t b) {
  uint64_t h = (uint64_t)a * 0x9e3779b97f4a7c15ull;
  for (int i = 0; i < 8; ++i) {
    h ^= (uint64_t)b + (h << 6) + (h >> 2);
    b = (int64_t)(h % 1000003u) - a;
  }
  return (int64_t)(h >> 3) ^ b;
}

struct mix_args { int64_t a; int64_t b; };

int32_t ferry_test_mix_entry(ferry_context* cx, const void* args, void* result) {
  (void)cx;
  const struct mix_args* in = (const struct mix_args*)args;
  *(int64_t*)result = ferry_test_mix(in->a, in->b);
  return 0;
}
