// The partition objects of the graph sample and the code that goes to them
// (the mobile functions: compiled into code objects, sent with the calls).
#pragma once

#include <cstddef>
#include <cstdint>

#include <ferry/ferry.hpp>

#include "graph.hpp"

/// A partition as ferry stores it: this header, then (8-byte words)
/// offsets[count + 1] (into its own adjacency), adjacency[entries] (global
/// vertex ids), three value arrays of `count` words each that the kernels
/// use (value 0 and 1: BFS levels / PageRank contributions, double-buffered
/// / component labels; value 2: BFS parents / ranks), and the outbox of the
/// top-down BFS: up to `outbox_capacity` (child, parent) pairs of words,
/// grouped by the partition that holds the child (`sent_at`).
struct graph_part {
  std::uint64_t vertices;  ///< n of the whole graph
  std::uint64_t block;     ///< vertices per partition; partition q holds [q*block, q*block + count_q)
  std::uint64_t first;     ///< this partition's first vertex
  std::uint64_t count;     ///< its vertices
  std::uint64_t entries;   ///< its adjacency entries
  std::uint32_t parts;
  std::uint32_t index;
  /// Every partition, itself included (FOT slot 0): cross-partition links.
  ferry::ptr<graph_part> peer[graph::kMaxParts];
  /// Byte offset of value array 0 in partition q's object.
  std::uint64_t peer_values_at[graph::kMaxParts];
  /// Byte offset of the outbox in partition q's object.
  std::uint64_t peer_outbox_at[graph::kMaxParts];
  /// (child, parent) pairs the outbox has room for.
  std::uint64_t outbox_capacity;
  /// Written by the last top-down BFS step: the pairs for partition q are
  /// outbox[sent_at[q] .. sent_at[q + 1]) (pair indices).
  std::uint64_t sent_at[graph::kMaxParts + 1];

  [[nodiscard]] static constexpr std::uint64_t offsets_at() { return sizeof(graph_part); }
  [[nodiscard]] static constexpr std::uint64_t adjacency_at(std::uint64_t count) {
    return offsets_at() + (count + 1) * 8;
  }
  [[nodiscard]] static constexpr std::uint64_t values_at(std::uint64_t count, std::uint64_t entries,
                                                         unsigned which) {
    return adjacency_at(count) + entries * 8 + std::uint64_t{which} * count * 8;
  }
  [[nodiscard]] static constexpr std::uint64_t outbox_at(std::uint64_t count, std::uint64_t entries) {
    return values_at(count, entries, 3);
  }
  [[nodiscard]] static constexpr std::uint64_t bytes(std::uint64_t count, std::uint64_t entries,
                                                     std::uint64_t outbox_capacity) {
    return outbox_at(count, entries) + outbox_capacity * 16;
  }
  /// Byte offset of `sent_at` in the header.
  [[nodiscard]] static constexpr std::uint64_t sent_at_offset() {
    return sizeof(graph_part) - sizeof(sent_at);
  }
};
static_assert(graph_part::sent_at_offset() == offsetof(graph_part, sent_at), "sent_at ends the header");

/// What a kernel step does on one partition.
enum graph_op : std::uint32_t {
  op_bfs_init = 1,  ///< level := unvisited, parent := unvisited; the root (arg) gets level 0, parent itself
  op_bfs_bottom_up, ///< an unvisited vertex with a neighbour at level `step` (any partition) joins level step+1
  op_pr_init,       ///< rank := 1/n; contribution := rank / degree
  op_pr_iterate,    ///< one PageRank iteration (contributions in value step%2 -> value (step+1)%2)
  op_cc_init,       ///< label := own vertex id
  op_cc_iterate,    ///< label := the smallest label among itself and its neighbours
  /// The vertices at level `step` here visit their neighbours: unvisited
  /// ones here join level step+1, the others' become (child, parent) pairs
  /// in the outbox, for op_bfs_absorb. If the pairs would not fit, nothing
  /// changes and the result says `overflow` (the caller then goes bottom-up).
  op_bfs_top_down,
  /// After a top-down step, every partition at once: the pairs the others
  /// sent here, for children still unvisited, make them join level step+1.
  op_bfs_absorb,
};

struct graph_step_result {
  std::uint64_t changed;  ///< vertices whose value changed (BFS: joined the level; CC: got a smaller label)
  std::uint64_t edges;    ///< adjacency entries examined
  std::uint64_t degrees;  ///< BFS: the degrees of the vertices that joined, summed
  std::uint64_t sent;     ///< BFS top-down: (child, parent) pairs put in the outbox for the others
  std::uint64_t overflow; ///< BFS top-down: 1 if the pairs would not have fit (then nothing changed)
};

/// Set partition `part`'s link to partition q (`peer`): a ptr in its header.
[[ferry::mobile]] std::uint32_t graph_link(ferry::context& cx, ferry::ref<graph_part> part,
                                           ferry::ref<graph_part> peer, std::uint32_t q);

/// One step of a kernel on the partition where `part` lives: its adjacency
/// stays there; the other partitions' value arrays are pulled with cx.fetch
/// through the header's links.
[[ferry::mobile]] graph_step_result graph_step(ferry::context& cx, ferry::ref<graph_part> part, std::uint32_t op,
                                               std::uint32_t step, std::uint64_t arg);
