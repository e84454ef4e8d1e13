// The graph stored as P partition objects on P nodes, and the three kernels
// run on it two ways:
//  * mobile — the code goes to the partitions: each step, every partition
//    runs `graph_step` where it lives (all at once), reading its adjacency
//    in place and pulling only the other partitions' value arrays;
//  * pull — the caller runs the kernel and reads the adjacency it needs
//    from the partitions with object reads, step by step (it keeps no copy
//    of the graph: the premise is a graph larger than any one node).
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <ferry/runtime.hpp>

#include "partition.hpp"

namespace graph {

/// How the mobile BFS goes through a level (docs: samples/graph/README.md).
enum class bfs_direction {
  /// Top-down while the frontier is small (its edges fewer than a 14th of
  /// the unreached vertices', or its vertices fewer than a 24th of all:
  /// Beamer's direction-optimizing BFS) and its edges fit the outboxes,
  /// else bottom-up.
  automatic,
  top_down,   ///< every level top-down whose pairs fit the outboxes (else that level bottom-up)
  bottom_up,  ///< every level bottom-up
};

/// One kernel run: its answer and what it cost.
struct run_result {
  std::vector<std::uint64_t> words;  ///< BFS: parents; CC: labels; PageRank: ranks (bit patterns of doubles)
  unsigned steps = 0;                ///< BFS levels, PageRank or CC iterations
  /// BFS: of its steps (steps + 1: the last finds no vertex to add), those
  /// gone top-down.
  unsigned top_down_steps = 0;
  double seconds = 0;                ///< the kernel, from its first step to its answer at the caller
  /// Bytes that crossed between processes: mobile, the value arrays the
  /// partitions pulled from each other; pull, the offsets and adjacency the
  /// caller read (answers read back at the end not counted).
  std::uint64_t bytes_moved = 0;
};

class distributed_graph {
 public:
  /// Store `g` as `parts` partition objects, partition p on node p, and link
  /// them (every header gets a ptr to every partition).
  distributed_graph(ferry::runtime& rt, const csr& g, std::uint32_t parts, const progress_fn& progress);

  /// Called with (steps done, steps in all or 0 if open-ended) after every
  /// step of the kernels run from now on (nothing: no progress).
  void on_step(progress_fn f) { step_progress_ = std::move(f); }

  /// The deadline of each partition's call in a mobile step (default 600 s:
  /// steps of a large graph take long on 2 busy cores).
  void set_step_deadline(std::chrono::milliseconds d) { step_call_.deadline = d; }

  /// Failed calls of mobile steps so far, by error. A step whose call to a
  /// partition fails (a dead node: peer_dead) still waits for its other
  /// partitions' answers, then throws the first failure's ferry::error.
  [[nodiscard]] const std::map<ferry::errc, std::uint64_t>& call_errors() const { return call_errors_; }

  /// Partition p's object.
  [[nodiscard]] ferry::ref<graph_part> partition(std::uint32_t p) const { return parts_.at(p).at; }

  /// Read partition p's offsets and adjacency back and compare them with
  /// `g`'s: "" when they are the same, else where they first differ.
  std::string compare_partition(std::uint32_t p, const csr& g);

  run_result bfs_mobile(std::uint64_t root, bfs_direction direction = bfs_direction::automatic);
  run_result pagerank_mobile(unsigned iterations);
  run_result cc_mobile();

  run_result bfs_pull(std::uint64_t root);
  run_result pagerank_pull(unsigned iterations);
  run_result cc_pull();

 private:
  struct part {
    ferry::ref<graph_part> at;
    std::uint64_t first, count, entries;
  };
  /// Run `op` on every partition at once; the sum of their results.
  graph_step_result step_all(graph_op op, std::uint32_t step, std::uint64_t arg);
  /// What the partitions pull from each other in one mobile step.
  [[nodiscard]] std::uint64_t pulled_per_step() const;
  /// Value array `which` of every partition, concatenated (n words).
  std::vector<std::uint64_t> read_values(unsigned which);
  /// The caller's read of partition p's offsets and adjacency for vertices
  /// [lo, hi) (global ids): offsets rebased to the returned adjacency
  /// (offsets alone unless `with_adjacency`); `bytes` counts what was read.
  struct slice {
    std::vector<std::uint64_t> offsets, adjacency;
  };
  slice read_slice(const part& p, std::uint64_t lo, std::uint64_t hi, std::uint64_t& bytes, bool with_adjacency = true);

  void stepped(unsigned steps, std::uint64_t total) const {
    if (step_progress_) step_progress_(steps, total);
  }

  ferry::runtime& rt_;
  progress_fn step_progress_;
  ferry::call_options step_call_{std::nullopt, std::chrono::milliseconds(600000)};
  std::map<ferry::errc, std::uint64_t> call_errors_;
  std::uint64_t vertices_, block_;
  std::uint64_t entries_ = 0;          ///< adjacency entries of the whole graph (twice its edges)
  std::uint64_t outbox_capacity_ = 0;  ///< pairs each partition's outbox holds
  std::vector<part> parts_;
};

}  // namespace graph
