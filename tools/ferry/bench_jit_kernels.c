/* Kernels for `ferry bench jit`: each compiled twice, natively into the
 * ferry executable and to bitcode embedded in it, so the benchmark compares
 * the same code (both at -O2). Uniform entries as the plugin generates them. */
#include <ferry/ferry.h>

/* FERRY_BENCH_ONLY=1 / 2 keeps only the small / large kernel, so each
 * bitcode module (and so each code object) holds one. */
#if !defined(FERRY_BENCH_ONLY) || FERRY_BENCH_ONLY == 1
/* Small (~10 lines): a hash mix. */
static uint64_t small_kernel(uint64_t a, uint64_t b) {
  uint64_t h = a * 0x9e3779b97f4a7c15ull;
  h ^= b + (h << 6) + (h >> 2);
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h + b;
}

int32_t ferry_bench_small_entry(ferry_context* cx, const void* args, void* result) {
  (void)cx;
  const uint64_t* in = (const uint64_t*)args;
  *(uint64_t*)result = small_kernel(in[0], in[1]);
  return 0;
}

#endif

#if !defined(FERRY_BENCH_ONLY) || FERRY_BENCH_ONLY == 2
/* Large (~150 lines): a checksum, a sort, and a tiny stack machine. */
static uint32_t crc32_step(uint32_t crc, uint8_t byte) {
  crc ^= byte;
  for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
  return crc;
}

static uint32_t crc32_u64(uint32_t crc, uint64_t v) {
  for (int i = 0; i < 8; ++i) crc = crc32_step(crc, (uint8_t)(v >> (8 * i)));
  return crc;
}

static uint64_t xorshift(uint64_t* s) {
  uint64_t x = *s;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  *s = x;
  return x;
}

static void insertion_sort(uint32_t* v, int n) {
  for (int i = 1; i < n; ++i) {
    uint32_t key = v[i];
    int j = i - 1;
    while (j >= 0 && v[j] > key) {
      v[j + 1] = v[j];
      --j;
    }
    v[j + 1] = key;
  }
}

static uint32_t median_of(uint32_t* v, int n) {
  insertion_sort(v, n);
  return (n & 1) ? v[n / 2] : (uint32_t)(((uint64_t)v[n / 2 - 1] + v[n / 2]) / 2);
}

enum op {
  OP_PUSH, OP_ADD, OP_SUB, OP_MUL, OP_XOR, OP_AND, OP_OR, OP_SHL,
  OP_SHR, OP_DUP, OP_SWAP, OP_DROP, OP_ROT, OP_MIX, OP_MIN, OP_MAX
};

struct vm {
  uint64_t stack[32];
  int sp;
  uint64_t acc;
};

static void vm_push(struct vm* m, uint64_t v) {
  if (m->sp < 32) m->stack[m->sp++] = v;
}

static uint64_t vm_pop(struct vm* m) { return m->sp > 0 ? m->stack[--m->sp] : 0; }

static void vm_step(struct vm* m, enum op o, uint64_t imm) {
  uint64_t a, b, c;
  switch (o) {
    case OP_PUSH: vm_push(m, imm); break;
    case OP_ADD: b = vm_pop(m); a = vm_pop(m); vm_push(m, a + b); break;
    case OP_SUB: b = vm_pop(m); a = vm_pop(m); vm_push(m, a - b); break;
    case OP_MUL: b = vm_pop(m); a = vm_pop(m); vm_push(m, a * b); break;
    case OP_XOR: b = vm_pop(m); a = vm_pop(m); vm_push(m, a ^ b); break;
    case OP_AND: b = vm_pop(m); a = vm_pop(m); vm_push(m, a & b); break;
    case OP_OR: b = vm_pop(m); a = vm_pop(m); vm_push(m, a | b); break;
    case OP_SHL: b = vm_pop(m); a = vm_pop(m); vm_push(m, a << (b & 63)); break;
    case OP_SHR: b = vm_pop(m); a = vm_pop(m); vm_push(m, a >> (b & 63)); break;
    case OP_DUP: a = vm_pop(m); vm_push(m, a); vm_push(m, a); break;
    case OP_SWAP: b = vm_pop(m); a = vm_pop(m); vm_push(m, b); vm_push(m, a); break;
    case OP_DROP: m->acc += vm_pop(m); break;
    case OP_ROT:
      c = vm_pop(m); b = vm_pop(m); a = vm_pop(m);
      vm_push(m, b); vm_push(m, c); vm_push(m, a);
      break;
    case OP_MIX:
      a = vm_pop(m);
      a ^= a >> 31;
      a *= 0x7fb5d329728ea185ull;
      a ^= a >> 27;
      vm_push(m, a);
      break;
    case OP_MIN: b = vm_pop(m); a = vm_pop(m); vm_push(m, a < b ? a : b); break;
    case OP_MAX: b = vm_pop(m); a = vm_pop(m); vm_push(m, a > b ? a : b); break;
  }
}

static uint64_t run_program(uint64_t seed, int steps) {
  struct vm m;
  m.sp = 0;
  m.acc = 0;
  uint64_t s = seed | 1;
  vm_push(&m, seed);
  vm_push(&m, seed >> 7);
  for (int i = 0; i < steps; ++i) {
    const uint64_t r = xorshift(&s);
    enum op o = (enum op)(r & 15);
    if (m.sp < 3 && o != OP_PUSH) o = OP_PUSH;
    vm_step(&m, o, r >> 8);
  }
  while (m.sp > 0) m.acc ^= vm_pop(&m);
  return m.acc;
}

static uint64_t histogram_score(const uint32_t* v, int n) {
  uint32_t bins[16] = {0};
  for (int i = 0; i < n; ++i) bins[v[i] >> 28]++;
  uint64_t score = 0;
  for (int b = 0; b < 16; ++b) score = score * 31 + bins[b] * (uint64_t)(b + 1);
  return score;
}

static uint64_t gcd_u64(uint64_t a, uint64_t b) {
  while (b != 0) {
    const uint64_t t = a % b;
    a = b;
    b = t;
  }
  return a;
}

static uint64_t collatz_steps(uint64_t n, int limit) {
  uint64_t steps = 0;
  while (n > 1 && steps < (uint64_t)limit) {
    n = (n & 1) ? 3 * n + 1 : n / 2;
    ++steps;
  }
  return steps;
}

static uint64_t large_kernel(uint64_t seed, uint64_t rounds) {
  uint32_t sample[24];
  uint64_t s = seed ^ 0x2545f4914f6cdd1dull;
  uint32_t crc = 0xffffffffu;
  uint64_t total = 0;
  for (uint64_t r = 0; r < rounds; ++r) {
    for (int i = 0; i < 24; ++i) sample[i] = (uint32_t)(xorshift(&s) >> 17);
    const uint64_t hist = histogram_score(sample, 24);
    const uint32_t med = median_of(sample, 24);
    crc = crc32_u64(crc, hist ^ med);
    const uint64_t prog = run_program(s ^ r, 24);
    const uint64_t g = gcd_u64(prog | 1, (uint64_t)med + 1);
    total += prog ^ ((uint64_t)crc << 32) ^ g ^ collatz_steps((uint64_t)med + r, 64);
  }
  return total ^ ~(uint64_t)crc;
}

int32_t ferry_bench_large_entry(ferry_context* cx, const void* args, void* result) {
  (void)cx;
  const uint64_t* in = (const uint64_t*)args;
  *(uint64_t*)result = large_kernel(in[0], in[1]);
  return 0;
}
#endif

#if !defined(FERRY_BENCH_ONLY) || FERRY_BENCH_ONLY == 3
/* Memory-bound (the pointer chase and the graph kernels in miniature): a
 * chase through a 32 KiB table, then a sweep over a graph in CSR form
 * (offsets, adjacency, values), every access at an index loaded from
 * memory; the tables are the module's globals, built on the first call. */
enum { CHASE_N = 4096, GRAPH_V = 512, GRAPH_E = 4096 };
static uint64_t chase_next[CHASE_N];
static uint32_t graph_off[GRAPH_V + 1];
static uint32_t graph_adj[GRAPH_E];
static uint64_t graph_val[GRAPH_V];
static int chase_ready;

static void chase_setup(void) {
  /* x -> a*x + c mod 2^12 with a = 1 mod 4 and c odd: one cycle through all entries */
  for (uint64_t i = 0; i < CHASE_N; ++i) chase_next[i] = (i * 2654435761u + 12345u) & (CHASE_N - 1);
  for (uint32_t v = 0; v <= GRAPH_V; ++v) graph_off[v] = v * (GRAPH_E / GRAPH_V);
  for (uint32_t e = 0; e < GRAPH_E; ++e) graph_adj[e] = (uint32_t)((e * 2654435761u) % GRAPH_V);
  for (uint32_t v = 0; v < GRAPH_V; ++v) graph_val[v] = v * 7u + 1u;
  chase_ready = 1;
}

static uint64_t chase_kernel(uint64_t start, uint64_t steps) {
  if (!chase_ready) chase_setup();
  uint64_t at = start & (CHASE_N - 1);
  for (uint64_t i = 0; i < steps; ++i) at = chase_next[at];
  uint64_t sum = at;
  for (uint32_t v = 0; v < GRAPH_V; ++v) {
    uint64_t s = 0;
    for (uint32_t e = graph_off[v]; e < graph_off[v + 1]; ++e) s += graph_val[graph_adj[e]];
    sum = sum * 31 + s;
  }
  return sum;
}

int32_t ferry_bench_chase_entry(ferry_context* cx, const void* args, void* result) {
  (void)cx;
  const uint64_t* in = (const uint64_t*)args;
  *(uint64_t*)result = chase_kernel(in[0], in[1]);
  return 0;
}
#endif
