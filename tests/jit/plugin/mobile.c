/* Mobile functions built by the Clang plugin (ferry_add_mobile): the JIT
 * runs their code objects and the test compares with these native copies. */
#include <ferry/ferry.h>
#include <math.h>

FERRY_MOBILE int64_t jit_plugin_mix(ferry_context* cx, int64_t a, int64_t b) {
  (void)cx;
  uint64_t h = (uint64_t)a * 0x9e3779b97f4a7c15ull;
  for (int i = 0; i < 8; ++i) {
    h ^= (uint64_t)b + (h << 6) + (h >> 2);
    b = (int64_t)(h % 1000003u) - a;
  }
  return (int64_t)(h >> 3) ^ b;
}

FERRY_MOBILE double jit_plugin_norm(ferry_context* cx, ferry_ref data, uint32_t n) {
  const double* v = (const double*)ferry_local(cx, &data, (uint64_t)n * sizeof(double));
  double s = 0;
  if (!v) return -1;
  for (uint32_t i = 0; i < n; ++i) s += v[i] * v[i];
  return sqrt(s);
}

/* Forwards to itself: takes its own address, so the JIT must map that
 * address back to the symbol (jit_function::symbol_at). */
struct hop_args {
  ferry_ref next;
  uint32_t depth;
};

FERRY_MOBILE uint64_t jit_plugin_hop(ferry_context* cx, ferry_ref next, uint32_t depth) {
  if (depth == 0) return 1;
  const struct hop_args a = {next, depth - 1};
  return (uint64_t)ferry_forward(cx, (const void*)&jit_plugin_hop, &next, &a, sizeof a);
}
