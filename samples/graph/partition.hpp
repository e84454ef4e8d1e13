// The partition objects of the graph sample and the code that goes to them
// (the mobile functions: compiled into code objects, sent with the calls).
#pragma once

#include <cstdint>

#include <ferry/ferry.hpp>

#include "graph.hpp"

/// A partition as ferry stores it: this header, then (8-byte words)
/// offsets[count + 1] (into its own adjacency), adjacency[entries] (global
/// vertex ids), and three value arrays of `count` words each that the
/// kernels use (value 0 and 1: BFS levels / PageRank contributions,
/// double-buffered / component labels; value 2: BFS parents / ranks).
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

  [[nodiscard]] static constexpr std::uint64_t offsets_at() { return sizeof(graph_part); }
  [[nodiscard]] static constexpr std::uint64_t adjacency_at(std::uint64_t count) {
    return offsets_at() + (count + 1) * 8;
  }
  [[nodiscard]] static constexpr std::uint64_t values_at(std::uint64_t count, std::uint64_t entries,
                                                         unsigned which) {
    return adjacency_at(count) + entries * 8 + std::uint64_t{which} * count * 8;
  }
  [[nodiscard]] static constexpr std::uint64_t bytes(std::uint64_t count, std::uint64_t entries) {
    return values_at(count, entries, 3);
  }
};

/// What a kernel step does on one partition.
enum graph_op : std::uint32_t {
  op_bfs_init = 1,  ///< level := unvisited, parent := unvisited; the root (arg) gets level 0, parent itself
  op_bfs_level,     ///< bottom-up: an unvisited vertex with a neighbour at level `step` joins level step+1
  op_pr_init,       ///< rank := 1/n; contribution := rank / degree
  op_pr_iterate,    ///< one PageRank iteration (contributions in value step%2 -> value (step+1)%2)
  op_cc_init,       ///< label := own vertex id
  op_cc_iterate,    ///< label := the smallest label among itself and its neighbours
};

struct graph_step_result {
  std::uint64_t changed;  ///< vertices whose value changed (BFS: joined the level; CC: got a smaller label)
  std::uint64_t edges;    ///< adjacency entries examined
};

/// Set partition `part`'s link to partition q (`peer`): a ptr in its header.
[[ferry::mobile]] std::uint32_t graph_link(ferry::context& cx, ferry::ref<graph_part> part,
                                           ferry::ref<graph_part> peer, std::uint32_t q);

/// One step of a kernel on the partition where `part` lives: its adjacency
/// stays there; the other partitions' value arrays are pulled with cx.fetch
/// through the header's links.
[[ferry::mobile]] graph_step_result graph_step(ferry::context& cx, ferry::ref<graph_part> part, std::uint32_t op,
                                               std::uint32_t step, std::uint64_t arg);
