// Where the graph comes from: the Graph500 Kronecker generator, a SNAP edge
// list, and the CSR both become.
#include <algorithm>
#include <fstream>
#include <numeric>
#include <random>
#include <sstream>
#include <stdexcept>

#include <fmt/format.h>

#include "graph.hpp"

namespace graph {

edge_list kronecker(unsigned scale, unsigned edge_factor, std::uint64_t seed, const progress_fn& progress) {
  // Graph500 reference generator (kronecker_generator.m): for each of the
  // scale bits of both endpoints pick a quadrant of the initiator matrix.
  constexpr double A = 0.57, B = 0.19, C = 0.19;
  const double ab = A + B, c_norm = C / (1 - ab), a_norm = A / ab;
  const std::uint64_t n = std::uint64_t{1} << scale, m = n * edge_factor;
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  edge_list edges(m);
  for (std::uint64_t e = 0; e < m; ++e) {
    std::uint64_t u = 0, v = 0;
    for (unsigned bit = 0; bit < scale; ++bit) {
      const bool ii = uniform(rng) > ab;
      const bool jj = uniform(rng) > (ii ? c_norm : a_norm);
      u |= std::uint64_t{ii} << bit;
      v |= std::uint64_t{jj} << bit;
    }
    edges[e] = {u, v};
    if (progress && (e + 1) % (std::uint64_t{1} << 20) == 0 && e + 1 < m) progress(e + 1, m);
  }
  // Scramble the labels so that vertex ids say nothing about degrees.
  std::vector<std::uint64_t> label(n);
  std::iota(label.begin(), label.end(), 0);
  std::shuffle(label.begin(), label.end(), rng);
  for (auto& [u, v] : edges) u = label[u], v = label[v];
  std::shuffle(edges.begin(), edges.end(), rng);
  if (progress) progress(m, m);
  return edges;
}

edge_list load_snap(const std::filesystem::path& file, std::uint64_t& vertices, const progress_fn& progress) {
  std::ifstream in(file);
  if (!in) throw std::runtime_error(fmt::format("cannot open {}", file.string()));
  edge_list edges;
  std::string line;
  std::uint64_t lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    const auto start = line.find_first_not_of(" \t\r");
    if (start == std::string::npos || line[start] == '#') continue;
    std::istringstream fields(line);
    std::uint64_t u = 0, v = 0;
    std::string rest;
    if (!(fields >> u >> v) || (fields >> rest && rest[0] != '#'))
      throw std::runtime_error(fmt::format("{}:{}: expected two vertex ids, got '{}'", file.string(), lineno, line));
    edges.emplace_back(u, v);
    if (progress && edges.size() % (std::uint64_t{1} << 20) == 0) progress(edges.size(), 0);
  }
  // Renumber the ids that occur to 0..n-1, keeping their order.
  std::vector<std::uint64_t> ids;
  ids.reserve(edges.size() * 2);
  for (const auto& [u, v] : edges) ids.push_back(u), ids.push_back(v);
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  auto index = [&](std::uint64_t id) {
    return static_cast<std::uint64_t>(std::lower_bound(ids.begin(), ids.end(), id) - ids.begin());
  };
  for (auto& [u, v] : edges) u = index(u), v = index(v);
  vertices = ids.size();
  if (progress) progress(edges.size(), edges.size());
  return edges;
}

csr build_csr(std::uint64_t vertices, const edge_list& edges) {
  csr g;
  g.vertices = vertices;
  g.offsets.assign(vertices + 1, 0);
  for (const auto& [u, v] : edges)
    if (u != v) ++g.offsets[u + 1], ++g.offsets[v + 1];
  std::partial_sum(g.offsets.begin(), g.offsets.end(), g.offsets.begin());
  g.adjacency.resize(g.offsets.back());
  std::vector<std::uint64_t> fill(g.offsets.begin(), g.offsets.end() - 1);
  for (const auto& [u, v] : edges)
    if (u != v) g.adjacency[fill[u]++] = v, g.adjacency[fill[v]++] = u;
  // Sort each list, drop duplicates, compact.
  std::uint64_t out = 0;
  for (std::uint64_t v = 0; v < vertices; ++v) {
    auto b = g.adjacency.begin() + static_cast<std::ptrdiff_t>(g.offsets[v]);
    auto e = g.adjacency.begin() + static_cast<std::ptrdiff_t>(g.offsets[v + 1]);
    std::sort(b, e);
    e = std::unique(b, e);
    g.offsets[v] = out;
    for (; b != e; ++b) g.adjacency[out++] = *b;
  }
  g.offsets[vertices] = out;
  g.adjacency.resize(out);
  g.adjacency.shrink_to_fit();
  return g;
}

}  // namespace graph
