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
};
struct pow2_blocks {
  unsigned shift;
  u64 mask;
  [[nodiscard]] u64 of(const u64* const* vals, u64 u) const { return vals[u >> shift][u & mask]; }
};
/// Run `kernel(blocks)` with the cheapest lookup this partitioning allows.
template <class Kernel>
graph_step_result with_blocks(u64 block, Kernel&& kernel) {
  if (block != 0 && (block & (block - 1)) == 0)
    return kernel(pow2_blocks{static_cast<unsigned>(__builtin_ctzll(block)), block - 1});
  return kernel(any_blocks{block});
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
  const graph_part* h = cx.local(part);
  const u64 n = h->count;
  const u64* off = cx.local(at<u64>(part, graph_part::offsets_at()), n + 1);
  const u64* adj = cx.local(at<u64>(part, graph_part::adjacency_at(n)), h->entries);
  u64* value[3];
  for (unsigned k = 0; k < 3; ++k) value[k] = cx.local(at<u64>(part, graph_part::values_at(n, h->entries, k)), n);
  const u64 block = h->block;
  graph_step_result r{0, 0};
  const u64* vals[graph::kMaxParts];

  switch (op) {
    case op_bfs_init:
      for (u64 i = 0; i < n; ++i) value[0][i] = value[2][i] = graph::kUnvisited;
      if (arg >= h->first && arg < h->first + n) {
        value[0][arg - h->first] = 0;
        value[2][arg - h->first] = arg;
        r.changed = 1;
      }
      return r;
    case op_bfs_level:  // bottom-up: look for a parent among the neighbours
      value_arrays(cx, part, h, 0, vals);
      return with_blocks(block, [&](const auto& b) {
        for (u64 i = 0; i < n; ++i) {
          if (value[0][i] != graph::kUnvisited) continue;
          for (u64 e = off[i]; e < off[i + 1]; ++e) {
            const u64 u = adj[e];
            ++r.edges;
            if (b.of(vals, u) == step) {
              value[0][i] = step + 1;  // vertices at level step+1 are not frontier vertices of this step
              value[2][i] = u;
              ++r.changed;
              break;
            }
          }
        }
        return r;
      });
    case op_pr_init: {
      const double rank = 1.0 / static_cast<double>(h->vertices);
      for (u64 i = 0; i < n; ++i) {
        const u64 deg = off[i + 1] - off[i];
        value[2][i] = as_word(rank);
        value[0][i] = as_word(deg ? rank / static_cast<double>(deg) : 0.0);
      }
      return r;
    }
    case op_pr_iterate: {
      value_arrays(cx, part, h, step % 2, vals);
      u64* next = value[(step + 1) % 2];
      return with_blocks(block, [&](const auto& b) {
        for (u64 i = 0; i < n; ++i) {
          double sum = 0;
          for (u64 e = off[i]; e < off[i + 1]; ++e) sum += as_double(b.of(vals, adj[e]));
          r.edges += off[i + 1] - off[i];
          const double rank = (1.0 - graph::kDamping) + graph::kDamping * sum;
          const u64 deg = off[i + 1] - off[i];
          value[2][i] = as_word(rank);
          next[i] = as_word(deg ? rank / static_cast<double>(deg) : 0.0);
        }
        r.changed = n;
        return r;
      });
    }
    case op_cc_init:
      for (u64 i = 0; i < n; ++i) value[0][i] = h->first + i;
      return r;
    case op_cc_iterate:
      value_arrays(cx, part, h, 0, vals);
      return with_blocks(block, [&](const auto& b) {
        for (u64 i = 0; i < n; ++i) {
          u64 label = value[0][i];
          for (u64 e = off[i]; e < off[i + 1]; ++e) {
            const u64 l = b.of(vals, adj[e]);
            if (l < label) label = l;
          }
          r.edges += off[i + 1] - off[i];
          if (label < value[0][i]) {
            value[0][i] = label;
            ++r.changed;
          }
        }
        return r;
      });
    default:
      return r;  // an unknown op changes nothing
  }
}
