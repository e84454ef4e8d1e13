// The code that goes to the partitions (graph.hpp): it reads its own
// adjacency in place and pulls only the other partitions' value arrays
// (one word per vertex) through the header's links.
#include "partition.hpp"

namespace {

using u64 = std::uint64_t;

template <class T>
ferry::ref<T> at(ferry::ref<graph_part> part, u64 byte_offset) {
  return ferry::ref<T>{part.id, byte_offset};
}

u64 part_count(const graph_part* h, std::uint32_t q) {
  const u64 first = u64{q} * h->block;
  if (first >= h->vertices) return 0;
  return h->vertices - first < h->block ? h->vertices - first : h->block;
}

/// Value array `which` of every partition: this one's in place, the others'
/// pulled (a snapshot taken now). vals[q][v - q*block] is vertex v's value.
void value_arrays(ferry::context& cx, ferry::ref<graph_part> part, const graph_part* h, unsigned which,
                  const u64* vals[graph::kMaxParts]) {
  for (std::uint32_t q = 0; q < h->parts; ++q) {
    const u64 count = part_count(h, q);
    if (q == h->index) {
      vals[q] = cx.local(at<u64>(part, graph_part::values_at(h->count, h->entries, which)), h->count);
    } else if (count == 0) {
      vals[q] = nullptr;
    } else {
      const ferry::ref<graph_part> peer = cx.resolve(part, h->peer[q]);
      vals[q] = cx.fetch(ferry::ref<u64>{peer.id, h->peer_values_at[q] + u64{which} * count * 8}, count);
    }
  }
}

double as_double(u64 w) { return __builtin_bit_cast(double, w); }
u64 as_word(double d) { return __builtin_bit_cast(u64, d); }

/// Vertex u's value in the arrays of every partition: vals[u / block][u % block].
/// A division per edge was most of an iteration's time; with partitions of
/// a power-of-two size (a 2^scale graph over 2^k servers) it is a shift and
/// a mask, and the kernels below are compiled once for each form.
struct any_blocks {
  u64 block;
  [[nodiscard]] u64 of(const u64* const* vals, u64 u) const { return vals[u / block][u % block]; }
  [[nodiscard]] u64 part_of(u64 u) const { return u / block; }
};
struct pow2_blocks {
  unsigned shift;
  u64 mask;
  [[nodiscard]] u64 of(const u64* const* vals, u64 u) const { return vals[u >> shift][u & mask]; }
  [[nodiscard]] u64 part_of(u64 u) const { return u >> shift; }
};
/// Run `kernel(blocks)` with the cheapest lookup this partitioning allows.
template <class Kernel>
graph_step_result with_blocks(u64 block, Kernel&& kernel) {
  if (block != 0 && (block & (block - 1)) == 0)
    return kernel(pow2_blocks{static_cast<unsigned>(__builtin_ctzll(block)), block - 1});
  return kernel(any_blocks{block});
}

/// The partition as the kernels see it: its header, and its arrays in place.
struct partition_view {
  graph_part* h;
  u64 n;  ///< its vertices
  const u64* off;
  const u64* adj;
  u64* value[3];
  /// Local vertex i joins BFS level `level` with parent `parent`; returns its degree.
  u64 join(u64 i, u64 level, u64 parent) const {
    value[0][i] = level;
    value[2][i] = parent;
    return off[i + 1] - off[i];
  }
};

// Each kernel step counts in locals and makes its result at the end: a
// counter kept in a result struct whose address a helper takes may be
// reloaded and stored around every store to the value arrays, which the
// compiler cannot tell apart from it. (Measured, the difference was within
// this machine's noise; the locals are kept as the safer form.)

graph_step_result bfs_init(const partition_view& p, u64 root) {
  for (u64 i = 0; i < p.n; ++i) p.value[0][i] = p.value[2][i] = graph::kUnvisited;
  if (root < p.h->first || root - p.h->first >= p.n) return {};
  return {1, 0, p.join(root - p.h->first, 0, root), 0, 0};
}

/// Bottom-up: an unvisited vertex looks for a parent among its neighbours,
/// in the snapshot `vals` of every partition's levels.
template <class Blocks>
graph_step_result bottom_up(const partition_view& p, const u64* const* vals, u64 step, const Blocks& b) {
  u64 changed = 0, edges = 0, degrees = 0;
  for (u64 i = 0; i < p.n; ++i) {
    if (p.value[0][i] != graph::kUnvisited) continue;
    for (u64 e = p.off[i]; e < p.off[i + 1]; ++e) {
      const u64 u = p.adj[e];
      ++edges;
      if (b.of(vals, u) == step) {  // vertices at level step+1 are not frontier vertices of this step
        degrees += p.join(i, step + 1, u);
        ++changed;
        break;
      }
    }
  }
  return {changed, edges, degrees, 0, 0};
}

/// Top-down from the vertices at level `step`: see op_bfs_top_down. Two
/// passes over the frontier's edges: the first counts the pairs for each
/// other partition (so they can be grouped in place, and nothing is done
/// when they would not fit), the second joins the unvisited neighbours here
/// and writes the pairs.
template <class Blocks>
graph_step_result top_down(ferry::context& cx, ferry::ref<graph_part> part, const partition_view& p, u64 step,
                           const Blocks& b) {
  graph_part* h = p.h;
  u64 per[graph::kMaxParts + 1] = {};
  for (u64 i = 0; i < p.n; ++i) {
    if (p.value[0][i] != step) continue;
    for (u64 e = p.off[i]; e < p.off[i + 1]; ++e)
      if (const u64 q = b.part_of(p.adj[e]); q != h->index && q < h->parts) ++per[q];
  }
  u64 total = 0;
  for (std::uint32_t q = 0; q <= h->parts; ++q) {  // per[q] becomes where q's pairs start
    const u64 mine = per[q];
    h->sent_at[q] = per[q] = total;
    total += mine;
  }
  if (total > h->outbox_capacity) {
    for (std::uint32_t q = 0; q <= h->parts; ++q) h->sent_at[q] = 0;  // nothing sent
    return {0, 0, 0, 0, 1};
  }
  u64* outbox = cx.local(at<u64>(part, graph_part::outbox_at(p.n, h->entries)), 2 * h->outbox_capacity);
  const u64 first = h->first, parts = h->parts, self = h->index;
  u64 changed = 0, edges = 0, degrees = 0;
  for (u64 i = 0; i < p.n; ++i) {
    if (p.value[0][i] != step) continue;
    const u64 parent = first + i;
    for (u64 e = p.off[i]; e < p.off[i + 1]; ++e) {
      const u64 u = p.adj[e];
      ++edges;
      if (const u64 q = b.part_of(u); q >= parts) {
        continue;  // not a vertex of this graph
      } else if (q != self) {
        u64* pair = outbox + 2 * per[q]++;
        pair[0] = u, pair[1] = parent;
      } else if (p.value[0][u - first] == graph::kUnvisited) {
        degrees += p.join(u - first, step + 1, parent);
        ++changed;
      }
    }
  }
  return {changed, edges, degrees, total, 0};
}

/// After a top-down step: the pairs every other partition sent here.
graph_step_result absorb(ferry::context& cx, ferry::ref<graph_part> part, const partition_view& p, u64 step) {
  const graph_part* h = p.h;
  u64 changed = 0, edges = 0, degrees = 0;
  for (std::uint32_t q = 0; q < h->parts; ++q) {
    if (q == h->index || part_count(h, q) == 0) continue;
    const ferry::ref<graph_part> peer = cx.resolve(part, h->peer[q]);
    const u64* sent_at = cx.fetch(ferry::ref<u64>{peer.id, graph_part::sent_at_offset()}, h->parts + 1);
    const u64 lo = sent_at[h->index], hi = sent_at[h->index + 1];
    if (hi <= lo) continue;
    const u64* pairs = cx.fetch(ferry::ref<u64>{peer.id, h->peer_outbox_at[q] + lo * 16}, 2 * (hi - lo));
    for (u64 k = 0; k < hi - lo; ++k) {
      const u64 child = pairs[2 * k], parent = pairs[2 * k + 1];
      if (child < h->first || child - h->first >= p.n) continue;  // not ours: ignored
      ++edges;
      if (p.value[0][child - h->first] == graph::kUnvisited) {
        degrees += p.join(child - h->first, step + 1, parent);
        ++changed;
      }
    }
  }
  return {changed, edges, degrees, 0, 0};
}

graph_step_result pr_init(const partition_view& p) {
  const double rank = 1.0 / static_cast<double>(p.h->vertices);
  for (u64 i = 0; i < p.n; ++i) {
    const u64 deg = p.off[i + 1] - p.off[i];
    p.value[2][i] = as_word(rank);
    p.value[0][i] = as_word(deg ? rank / static_cast<double>(deg) : 0.0);
  }
  return {};
}

/// One PageRank iteration: contributions from `vals` (every partition's,
/// value step%2) into value (step+1)%2, ranks into value 2.
template <class Blocks>
graph_step_result pr_iterate(const partition_view& p, const u64* const* vals, u64 step, const Blocks& b) {
  u64* next = p.value[(step + 1) % 2];
  for (u64 i = 0; i < p.n; ++i) {
    double sum = 0;
    for (u64 e = p.off[i]; e < p.off[i + 1]; ++e) sum += as_double(b.of(vals, p.adj[e]));
    const double rank = (1.0 - graph::kDamping) + graph::kDamping * sum;
    const u64 deg = p.off[i + 1] - p.off[i];
    p.value[2][i] = as_word(rank);
    next[i] = as_word(deg ? rank / static_cast<double>(deg) : 0.0);
  }
  return {p.n, p.off[p.n] - p.off[0], 0, 0, 0};
}

graph_step_result cc_init(const partition_view& p) {
  for (u64 i = 0; i < p.n; ++i) p.value[0][i] = p.h->first + i;
  return {};
}

/// Each label becomes the smallest among itself and its neighbours' in `vals`.
template <class Blocks>
graph_step_result cc_iterate(const partition_view& p, const u64* const* vals, const Blocks& b) {
  u64 changed = 0;
  for (u64 i = 0; i < p.n; ++i) {
    u64 label = p.value[0][i];
    for (u64 e = p.off[i]; e < p.off[i + 1]; ++e) {
      const u64 l = b.of(vals, p.adj[e]);
      if (l < label) label = l;
    }
    if (label < p.value[0][i]) {
      p.value[0][i] = label;
      ++changed;
    }
  }
  return {changed, p.off[p.n] - p.off[0], 0, 0, 0};
}

}  // namespace

[[ferry::mobile]] std::uint32_t graph_link(ferry::context& cx, ferry::ref<graph_part> part,
                                           ferry::ref<graph_part> peer, std::uint32_t q) {
  const ferry::ptr<graph_part> p = cx.make_ptr(part, peer);  // first: a new FOT slot may lay the object out anew
  graph_part* h = cx.local(part);
  if (q >= h->parts) return 0;
  h->peer[q] = p;
  return 1;
}

[[ferry::mobile]] graph_step_result graph_step(ferry::context& cx, ferry::ref<graph_part> part, std::uint32_t op,
                                               std::uint32_t step, std::uint64_t arg) {
  graph_part* h = cx.local(part);
  // The kernels index arrays of kMaxParts by partition: a header no
  // distributed_graph wrote changes nothing.
  if (h->parts > graph::kMaxParts || h->index >= h->parts) return {};
  const u64 n = h->count;
  partition_view p{h, n, cx.local(at<u64>(part, graph_part::offsets_at()), n + 1),
                   cx.local(at<u64>(part, graph_part::adjacency_at(n)), h->entries), {}};
  for (unsigned k = 0; k < 3; ++k) p.value[k] = cx.local(at<u64>(part, graph_part::values_at(n, h->entries, k)), n);
  const u64* vals[graph::kMaxParts];
  switch (op) {
    case op_bfs_init:
      return bfs_init(p, arg);
    case op_bfs_bottom_up:
      value_arrays(cx, part, h, 0, vals);
      return with_blocks(h->block, [&](const auto& b) { return bottom_up(p, vals, step, b); });
    case op_bfs_top_down:
      return with_blocks(h->block, [&](const auto& b) { return top_down(cx, part, p, step, b); });
    case op_bfs_absorb:
      return absorb(cx, part, p, step);
    case op_pr_init:
      return pr_init(p);
    case op_pr_iterate:
      value_arrays(cx, part, h, step % 2, vals);
      return with_blocks(h->block, [&](const auto& b) { return pr_iterate(p, vals, step, b); });
    case op_cc_init:
      return cc_init(p);
    case op_cc_iterate:
      value_arrays(cx, part, h, 0, vals);
      return with_blocks(h->block, [&](const auto& b) { return cc_iterate(p, vals, b); });
    default:
      return {};  // an unknown op changes nothing
  }
}
