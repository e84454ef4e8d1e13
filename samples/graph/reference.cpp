// The single-process reference every answer is checked against: Boost.Graph
// (breadth_first_search, page_rank, connected_components) on the same
// graph, and Graph500's validation of a BFS parent tree.
#include <boost/graph/adjacency_list.hpp>
#include <boost/graph/breadth_first_search.hpp>
#include <boost/graph/connected_components.hpp>
#include <boost/graph/page_rank.hpp>
#include <fmt/format.h>

#include "graph.hpp"

namespace graph {

reference compute_reference(const csr& g, const std::vector<std::uint64_t>& roots, unsigned pagerank_iterations) {
  using boost_graph = boost::adjacency_list<boost::vecS, boost::vecS, boost::undirectedS>;
  boost_graph bg(g.vertices);
  for (std::uint64_t u = 0; u < g.vertices; ++u)
    for (std::uint64_t e = g.offsets[u]; e < g.offsets[u + 1]; ++e)
      if (u < g.adjacency[e]) boost::add_edge(u, g.adjacency[e], bg);

  reference r;
  for (std::uint64_t root : roots) {
    auto& level = r.level.emplace_back(g.vertices, kUnvisited);
    level[root] = 0;
    boost::breadth_first_search(
        bg, boost::vertex(root, bg),
        boost::visitor(boost::make_bfs_visitor(boost::record_distances(level.data(), boost::on_tree_edge()))));
  }

  r.rank.assign(g.vertices, 0.0);
  unsigned done = 0;  // Boost asks "done?" before every iteration
  boost::graph::page_rank(bg, r.rank.data(), [&](auto&&...) { return done++ == pagerank_iterations; }, kDamping);

  std::vector<std::uint64_t> id(g.vertices);
  r.components = boost::connected_components(bg, id.data());
  std::vector<std::uint64_t> smallest(r.components, kUnvisited);
  for (std::uint64_t v = 0; v < g.vertices; ++v) smallest[id[v]] = std::min(smallest[id[v]], v);
  r.component.resize(g.vertices);
  for (std::uint64_t v = 0; v < g.vertices; ++v) r.component[v] = smallest[id[v]];
  return r;
}

std::string validate_bfs(const csr& g, const std::vector<std::uint64_t>& level, std::uint64_t root,
                         const std::vector<std::uint64_t>& parent) {
  if (parent.size() != g.vertices) return fmt::format("{} parents for {} vertices", parent.size(), g.vertices);
  if (parent[root] != root) return fmt::format("the root {} is not its own parent", root);
  for (std::uint64_t v = 0; v < g.vertices; ++v) {
    const std::uint64_t p = parent[v];
    const bool reached = level[v] != kUnvisited;
    // The tree spans exactly the root's component.
    if ((p != kUnvisited) != reached)
      return fmt::format("vertex {} {} but is {} the root's component", v, reached ? "has no parent" : "has a parent",
                         reached ? "in" : "not in");
    if (v == root || p == kUnvisited) continue;
    if (p >= g.vertices) return fmt::format("vertex {} has parent {}, not a vertex", v, p);
    // Each tree edge is a graph edge joining consecutive levels, so following
    // parents strictly decreases the level and reaches the root: no cycle.
    const auto b = g.adjacency.begin() + static_cast<std::ptrdiff_t>(g.offsets[v]);
    const auto e = g.adjacency.begin() + static_cast<std::ptrdiff_t>(g.offsets[v + 1]);
    if (!std::binary_search(b, e, p)) return fmt::format("tree edge {}-{} is not a graph edge", p, v);
    if (level[p] + 1 != level[v])
      return fmt::format("tree edge {}-{} joins levels {} and {}", p, v, level[p], level[v]);
  }
  // Every graph edge joins levels at most one apart (true of the reference
  // levels by construction: checked once more against the graph given).
  for (std::uint64_t u = 0; u < g.vertices; ++u)
    for (std::uint64_t e = g.offsets[u]; e < g.offsets[u + 1]; ++e) {
      const std::uint64_t v = g.adjacency[e];
      if ((level[u] == kUnvisited) != (level[v] == kUnvisited) ||
          (level[u] != kUnvisited && level[u] + 1 < level[v]))
        return fmt::format("graph edge {}-{} joins levels {} and {}", u, v, level[u], level[v]);
    }
  return "";
}

}  // namespace graph
