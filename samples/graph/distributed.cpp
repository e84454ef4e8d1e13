#include "distributed.hpp"

#include <algorithm>
#include <bit>
#include <optional>

#include <fmt/format.h>

namespace graph {
namespace {

using clock_type = std::chrono::steady_clock;
using u64 = std::uint64_t;

constexpr u64 kOutboxShare = 8;       ///< an outbox holds pairs for 1/kOutboxShare of the edges...
constexpr u64 kOutboxMinimum = 1024;  ///< ...and at least this many
/// The automatic BFS goes top-down while the frontier's edges times
/// kTopDownAlpha are fewer than the unvisited vertices' edges, or its
/// vertices times kTopDownBeta fewer than all (Beamer, Asanović and
/// Patterson's direction-optimizing BFS, with their constants), and the
/// frontier's edges fit the outboxes.
constexpr u64 kTopDownAlpha = 14;
constexpr u64 kTopDownBeta = 24;

void add(graph_step_result& sum, const graph_step_result& r) {
  sum.changed += r.changed;
  sum.edges += r.edges;
  sum.degrees += r.degrees;
  sum.sent += r.sent;
  sum.overflow += r.overflow;
}

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}
u64 as_word(double d) { return std::bit_cast<u64>(d); }

}  // namespace

distributed_graph::distributed_graph(ferry::runtime& rt, const csr& g, std::uint32_t parts,
                                     const progress_fn& progress)
    : rt_(rt), vertices_(g.vertices), block_(block_size(g.vertices, parts)), entries_(g.adjacency.size()) {
  for (std::uint32_t p = 0; p < parts; ++p) {
    const u64 first = std::min<u64>(u64{p} * block_, vertices_);
    const u64 count = std::min<u64>(block_, vertices_ - first);
    parts_.push_back({{}, first, count, g.offsets[first + count] - g.offsets[first]});
  }
  // The top-down BFS's outboxes: room for an eighth of the largest
  // partition's edges (a quarter more memory than its adjacency), all alike,
  // so that a frontier whose edges fit is known to fit everywhere.
  u64 most = 0;
  for (const part& p : parts_) most = std::max(most, p.entries);
  outbox_capacity_ = most / kOutboxShare + kOutboxMinimum;
  graph_part header{};
  header.vertices = vertices_;
  header.block = block_;
  header.parts = parts;
  header.outbox_capacity = outbox_capacity_;
  for (std::uint32_t p = 0; p < parts; ++p) {
    part& pt = parts_[p];
    pt.at = ferry::ref<graph_part>{rt_.objects().create_bytes(graph_part::bytes(pt.count, pt.entries, outbox_capacity_), p), 0};
    header.peer_values_at[p] = graph_part::values_at(pt.count, pt.entries, 0);
    header.peer_outbox_at[p] = graph_part::outbox_at(pt.count, pt.entries);
  }
  const u64 total = g.offsets.back() + g.vertices + parts;
  u64 stored = 0;
  for (std::uint32_t p = 0; p < parts; ++p) {
    const part& pt = parts_[p];
    graph_part h = header;
    h.first = pt.first, h.count = pt.count, h.entries = pt.entries, h.index = p;
    rt_.objects().put(pt.at, std::span<const graph_part>(&h, 1));
    std::vector<u64> offsets(g.offsets.begin() + static_cast<std::ptrdiff_t>(pt.first),
                             g.offsets.begin() + static_cast<std::ptrdiff_t>(pt.first + pt.count + 1));
    for (auto& o : offsets) o -= g.offsets[pt.first];
    rt_.objects().put(ferry::ref<u64>{pt.at.id, graph_part::offsets_at()}, std::span<const u64>(offsets));
    stored += offsets.size();
    // The adjacency in slices of 4 Mi entries, so that progress shows.
    constexpr u64 kSlice = u64{1} << 22;
    for (u64 done = 0; done < pt.entries; done += kSlice) {
      const u64 len = std::min(kSlice, pt.entries - done);
      rt_.objects().put(ferry::ref<u64>{pt.at.id, graph_part::adjacency_at(pt.count) + done * 8},
                        std::span<const u64>(g.adjacency.data() + g.offsets[pt.first] + done, len));
      stored += len;
      if (progress) progress(stored, total);
    }
    if (progress && pt.entries == 0) progress(stored, total);  // else the last slice said it
  }
  for (std::uint32_t p = 0; p < parts; ++p)
    for (std::uint32_t q = 0; q < parts; ++q)
      if (rt_.invoke(&graph_link, parts_[p].at, parts_[q].at, q).get() != 1)
        throw ferry::error(ferry::make_error(ferry::errc::invalid_argument, "graph_link refused a partition index"));
  // The first calls of graph_step on each node ship its code, compile it and
  // tier it up: out of the kernels' timings (each kernel starts with its init).
  for (int i = 0; i < 3; ++i) step_all(op_cc_init, 0, 0);
}

graph_step_result distributed_graph::step_all(graph_op op, std::uint32_t step, std::uint64_t arg) {
  std::vector<ferry::future<graph_step_result>> calls;
  for (const part& p : parts_) calls.push_back(rt_.invoke_with(step_call_, &graph_step, p.at, op, step, arg));
  graph_step_result sum{};
  std::optional<ferry::error> failed;
  for (auto& c : calls) {  // every answer, even after a failure: no call is left behind
    const ferry::result<graph_step_result> r = c.try_get();
    if (!r) {
      ++call_errors_[r.code()];
      if (!failed) failed.emplace(r.error());
      continue;
    }
    add(sum, *r);
  }
  if (failed) throw *failed;
  return sum;
}

u64 distributed_graph::pulled_per_step() const {
  u64 words = 0;
  for (const part& p : parts_) words += vertices_ - p.count;  // every other partition's values
  return words * 8;
}

std::vector<u64> distributed_graph::read_values(unsigned which) {
  std::vector<u64> out;
  out.reserve(vertices_);
  for (const part& p : parts_) {
    auto v = rt_.objects().get(ferry::ref<u64>{p.at.id, graph_part::values_at(p.count, p.entries, which)}, p.count);
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}

// ---- mobile: the code goes to the partitions --------------------------------

run_result distributed_graph::bfs_mobile(u64 root, bfs_direction direction) {
  run_result r;
  const auto t0 = clock_type::now();
  graph_step_result frontier = step_all(op_bfs_init, 0, root);  // level 0: the root
  u64 unexplored = entries_ - frontier.degrees;                  // edges of the vertices not reached yet
  while (frontier.changed > 0) {  // level r.steps -> r.steps + 1
    const bool top_down =
        direction == bfs_direction::top_down ||
        (direction == bfs_direction::automatic && frontier.degrees <= outbox_capacity_ &&
         (frontier.degrees * kTopDownAlpha < unexplored || frontier.changed * kTopDownBeta < vertices_));
    graph_step_result next{};
    if (top_down) {
      next = step_all(op_bfs_top_down, r.steps, 0);
      if (next.sent > 0) {  // the others' pairs, once every partition has written them
        add(next, step_all(op_bfs_absorb, r.steps, 0));
        r.bytes_moved += next.sent * 16 + u64{parts_.size()} * (parts_.size() - 1) * (parts_.size() + 1) * 8;
      }
      if (next.overflow == 0) ++r.top_down_steps;
    }
    if (!top_down || next.overflow > 0) {  // a partition's pairs did not fit: the level bottom-up (it skips the joined)
      add(next, step_all(op_bfs_bottom_up, r.steps, 0));
      r.bytes_moved += pulled_per_step();
    }
    unexplored -= std::min(unexplored, next.degrees);
    frontier = next;
    if (frontier.changed > 0) stepped(++r.steps, 0);
  }
  r.words = read_values(2);
  r.seconds = seconds_since(t0);
  return r;
}

run_result distributed_graph::pagerank_mobile(unsigned iterations) {
  run_result r;
  const auto t0 = clock_type::now();
  step_all(op_pr_init, 0, 0);
  for (; r.steps < iterations; ++r.steps) {
    step_all(op_pr_iterate, r.steps, 0);
    r.bytes_moved += pulled_per_step();
    stepped(r.steps + 1, iterations);
  }
  r.words = read_values(2);
  r.seconds = seconds_since(t0);
  return r;
}

run_result distributed_graph::cc_mobile() {
  run_result r;
  const auto t0 = clock_type::now();
  step_all(op_cc_init, 0, 0);
  for (bool changed = true; changed; ++r.steps) {  // until no label gets smaller
    r.bytes_moved += pulled_per_step();
    changed = step_all(op_cc_iterate, r.steps, 0).changed > 0;
    stepped(r.steps + 1, 0);
  }
  r.words = read_values(0);
  r.seconds = seconds_since(t0);
  return r;
}

// ---- pull: the caller reads the adjacency -----------------------------------

distributed_graph::slice distributed_graph::read_slice(const part& p, u64 lo, u64 hi, u64& bytes,
                                                       bool with_adjacency) {
  slice s;
  s.offsets = rt_.objects().get(ferry::ref<u64>{p.at.id, graph_part::offsets_at() + (lo - p.first) * 8}, hi - lo + 1);
  const u64 base = s.offsets.front(), len = s.offsets.back() - base;
  if (with_adjacency && len > 0) s.adjacency = rt_.objects().get(ferry::ref<u64>{p.at.id, graph_part::adjacency_at(p.count) + base * 8}, len);
  for (auto& o : s.offsets) o -= base;
  bytes += (s.offsets.size() + s.adjacency.size()) * 8;
  return s;
}

std::string distributed_graph::compare_partition(std::uint32_t p, const csr& g) {
  const part& pt = parts_.at(p);
  u64 bytes = 0;
  const slice s = read_slice(pt, pt.first, pt.first + pt.count, bytes);
  const u64 base = g.offsets[pt.first];
  for (u64 i = 0; i <= pt.count; ++i)
    if (s.offsets[i] != g.offsets[pt.first + i] - base)
      return fmt::format("partition {}: offset of vertex {} is {}, not {}", p, pt.first + i, s.offsets[i],
                         g.offsets[pt.first + i] - base);
  for (u64 e = 0; e < pt.entries; ++e)
    if (s.adjacency[e] != g.adjacency[base + e])
      return fmt::format("partition {}: adjacency entry {} is {}, not {}", p, e, s.adjacency[e], g.adjacency[base + e]);
  return "";
}

run_result distributed_graph::bfs_pull(u64 root) {
  // Top-down: per level and partition, one read of the offsets and the
  // adjacency spanning the frontier's vertices there.
  run_result r;
  const auto t0 = clock_type::now();
  std::vector<u64> parent(vertices_, kUnvisited), frontier{root}, next;
  parent[root] = root;
  while (!frontier.empty()) {
    std::sort(frontier.begin(), frontier.end());
    auto it = frontier.begin();
    for (const part& p : parts_) {
      const auto end = std::lower_bound(it, frontier.end(), p.first + p.count);
      if (it == end) continue;
      const u64 lo = *it;
      const slice s = read_slice(p, lo, *(end - 1) + 1, r.bytes_moved);
      for (; it != end; ++it)
        for (u64 e = s.offsets[*it - lo]; e < s.offsets[*it - lo + 1]; ++e)
          if (const u64 v = s.adjacency[e]; parent[v] == kUnvisited) parent[v] = *it, next.push_back(v);
    }
    frontier.swap(next);
    next.clear();
    if (!frontier.empty()) stepped(++r.steps, 0);
  }
  r.words = std::move(parent);
  r.seconds = seconds_since(t0);
  return r;
}

run_result distributed_graph::pagerank_pull(unsigned iterations) {
  run_result r;
  const auto t0 = clock_type::now();
  std::vector<double> contribution(vertices_), next(vertices_), rank(vertices_, 1.0 / static_cast<double>(vertices_));
  for (const part& p : parts_) {  // the degrees: offsets only
    const slice s = read_slice(p, p.first, p.first + p.count, r.bytes_moved, false);
    for (u64 i = 0; i < p.count; ++i) {
      const u64 deg = s.offsets[i + 1] - s.offsets[i];
      contribution[p.first + i] = deg ? rank[p.first + i] / static_cast<double>(deg) : 0.0;
    }
  }
  for (; r.steps < iterations; ++r.steps) {
    for (const part& p : parts_) {
      const slice s = read_slice(p, p.first, p.first + p.count, r.bytes_moved);
      for (u64 i = 0; i < p.count; ++i) {
        double sum = 0;
        for (u64 e = s.offsets[i]; e < s.offsets[i + 1]; ++e) sum += contribution[s.adjacency[e]];
        const u64 deg = s.offsets[i + 1] - s.offsets[i];
        rank[p.first + i] = (1.0 - kDamping) + kDamping * sum;
        next[p.first + i] = deg ? rank[p.first + i] / static_cast<double>(deg) : 0.0;
      }
    }
    contribution.swap(next);
    stepped(r.steps + 1, iterations);
  }
  r.words.resize(vertices_);
  for (u64 v = 0; v < vertices_; ++v) r.words[v] = as_word(rank[v]);
  r.seconds = seconds_since(t0);
  return r;
}

run_result distributed_graph::cc_pull() {
  run_result r;
  const auto t0 = clock_type::now();
  std::vector<u64> label(vertices_);
  for (u64 v = 0; v < vertices_; ++v) label[v] = v;
  for (bool changed = true; changed;) {
    changed = false;
    ++r.steps;
    for (const part& p : parts_) {
      const slice s = read_slice(p, p.first, p.first + p.count, r.bytes_moved);
      for (u64 i = 0; i < p.count; ++i)
        for (u64 e = s.offsets[i]; e < s.offsets[i + 1]; ++e)
          if (label[s.adjacency[e]] < label[p.first + i]) label[p.first + i] = label[s.adjacency[e]], changed = true;
    }
    stepped(r.steps, 0);
  }
  r.words = std::move(label);
  r.seconds = seconds_since(t0);
  return r;
}

}  // namespace graph
