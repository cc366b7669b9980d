// Graclus clustering and coarsening (DIFFPOOL-DET).
#include <gtest/gtest.h>

#include <numeric>
#include <set>

#include "engine/core/error.hpp"
#include "engine/core/random.hpp"
#include "engine/data/graclus.hpp"

namespace diffpool {
namespace {

// Symmetric CSR from an undirected edge list (weights optional, one per listed edge).
LocalGraph make_graph(int64_t n, const std::vector<std::pair<int, int>>& edges, const std::vector<double>& weights = {}) {
  std::vector<std::vector<std::pair<int32_t, double>>> rows(n);
  for (size_t e = 0; e < edges.size(); ++e) {
    auto [u, v] = edges[e];
    double w = weights.empty() ? 1.0 : weights[e];
    rows[u].push_back({v, w});
    if (u != v) rows[v].push_back({u, w});
  }
  LocalGraph graph;
  graph.num_nodes = n;
  graph.offsets.push_back(0);
  for (auto& row : rows) {
    std::sort(row.begin(), row.end());
    for (auto [t, w] : row) {
      graph.targets.push_back(t);
      graph.weights.push_back(w);
    }
    graph.offsets.push_back(static_cast<int64_t>(graph.targets.size()));
  }
  if (weights.empty()) graph.weights.clear();
  return graph;
}

LocalGraph random_graph(int64_t n, double p, uint64_t seed) {
  Rng rng(seed);
  std::vector<std::pair<int, int>> edges;
  for (int u = 0; u < n; ++u)
    for (int v = u + 1; v < n; ++v)
      if (rng.uniform() < p) edges.push_back({u, v});
  return make_graph(n, edges);
}

// The algorithm of graclus.hpp written plainly: one matching pass, then coarsen(), repeated. The
// library contracts clusters in place instead (much faster on star-like graphs); with integer
// weights every sum is exact, so both must agree exactly.
std::vector<int32_t> reference_graclus(const LocalGraph& graph, int64_t max_clusters) {
  const int64_t n = graph.num_nodes;
  std::vector<int32_t> cluster(n);
  std::iota(cluster.begin(), cluster.end(), 0);
  if (n <= max_clusters) return cluster;
  LocalGraph current = graph;
  std::vector<int64_t> size(n, 1);
  while (current.num_nodes > max_clusters) {
    const int64_t c = current.num_nodes;
    std::vector<double> degree(c, 0.0);
    for (int64_t a = 0; a < c; ++a)
      for (int64_t j = current.offsets[a]; j < current.offsets[a + 1]; ++j)
        degree[a] += current.weights.empty() ? 1.0 : current.weights[j];
    std::vector<int32_t> order(c);
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
      return degree[a] < degree[b] || (degree[a] == degree[b] && a < b);
    });
    std::vector<int32_t> partner(c, -1);
    int64_t pairs = 0;
    for (int32_t a : order) {
      if (pairs == c - max_clusters) break;
      if (partner[a] >= 0) continue;
      int32_t best = -1;
      double best_score = 0.0;
      for (int64_t j = current.offsets[a]; j < current.offsets[a + 1]; ++j) {
        int32_t b = current.targets[j];
        double w = current.weights.empty() ? 1.0 : current.weights[j];
        if (b == a || partner[b] >= 0 || !(w > 0.0)) continue;
        double score = w * (1.0 / degree[a] + 1.0 / degree[b]);
        if (best < 0 || score > best_score || (score == best_score && b < best)) {
          best = b;
          best_score = score;
        }
      }
      if (best >= 0) {
        partner[a] = best;
        partner[best] = a;
        ++pairs;
      }
    }
    std::vector<int32_t> group(c, -1);
    int32_t next = 0;
    if (pairs == 0) {
      // Stall: merge the two smallest (size, id) until max_clusters remain; the lower id survives.
      std::vector<int32_t> parent(c);
      std::iota(parent.begin(), parent.end(), 0);
      std::vector<std::pair<int64_t, int32_t>> live;
      for (int32_t a = 0; a < c; ++a) live.push_back({size[a], a});
      while (static_cast<int64_t>(live.size()) > max_clusters) {
        std::sort(live.begin(), live.end());
        auto [sa, a] = live[0];
        auto [sb, b] = live[1];
        live.erase(live.begin(), live.begin() + 2);
        parent[std::max(a, b)] = std::min(a, b);
        live.push_back({sa + sb, std::min(a, b)});
      }
      for (int32_t a = 0; a < c; ++a) {
        int32_t r = a;
        while (parent[r] != r) r = parent[r];
        group[a] = r == a ? next++ : group[r];
      }
      for (auto& a : cluster) a = group[a];
      return cluster;
    }
    for (int32_t a = 0; a < c; ++a) {
      if (group[a] >= 0) continue;
      group[a] = next;
      if (partner[a] >= 0) group[partner[a]] = next;
      ++next;
    }
    std::vector<int64_t> merged(next, 0);
    for (int32_t a = 0; a < c; ++a) merged[group[a]] += size[a];
    size = merged;
    current = coarsen(current, group, next);
    for (auto& a : cluster) a = group[a];
  }
  return cluster;
}

// Every id in 0..c-1 used, and ids ordered by smallest member.
void expect_valid_clusters(const std::vector<int32_t>& cluster, int64_t n, int64_t max_clusters) {
  ASSERT_EQ(static_cast<int64_t>(cluster.size()), n);
  const int64_t c = std::min(n, max_clusters);
  int32_t next_new = 0;
  for (int32_t a : cluster) {
    ASSERT_GE(a, 0);
    ASSERT_LE(a, next_new) << "cluster ids must appear in order of their smallest member";
    if (a == next_new) ++next_new;
  }
  EXPECT_EQ(next_new, c);
}

TEST(Graclus, PathOfFourIntoPairs) {
  LocalGraph path = make_graph(4, {{0, 1}, {1, 2}, {2, 3}});
  EXPECT_EQ(graclus_clusters(path, 2), (std::vector<int32_t>{0, 0, 1, 1}));
}

TEST(Graclus, FewNodesEachOwnCluster) {
  LocalGraph triangle = make_graph(3, {{0, 1}, {1, 2}, {0, 2}});
  EXPECT_EQ(graclus_clusters(triangle, 3), (std::vector<int32_t>{0, 1, 2}));
  EXPECT_EQ(graclus_clusters(triangle, 10), (std::vector<int32_t>{0, 1, 2}));
  EXPECT_EQ(graclus_clusters(triangle, 1), (std::vector<int32_t>{0, 0, 0}));
  EXPECT_EQ(graclus_clusters(make_graph(1, {}), 1), (std::vector<int32_t>{0}));
  EXPECT_EQ(graclus_clusters(make_graph(1, {}), 5), (std::vector<int32_t>{0}));
  EXPECT_TRUE(graclus_clusters(make_graph(0, {}), 3).empty());
  EXPECT_THROW(graclus_clusters(triangle, 0), Error);
}

TEST(Graclus, DisconnectedGraphMergesSmallestParts) {
  // Two triangles and an isolated node into two clusters: matching merges each triangle, then
  // stalls; the two smallest clusters (the isolated node and the first triangle) are merged.
  LocalGraph graph = make_graph(7, {{0, 1}, {1, 2}, {0, 2}, {3, 4}, {4, 5}, {3, 5}});
  EXPECT_EQ(graclus_clusters(graph, 2), (std::vector<int32_t>{0, 0, 0, 1, 1, 1, 0}));
  EXPECT_EQ(graclus_clusters(graph, 3), (std::vector<int32_t>{0, 0, 0, 1, 1, 1, 2}));
}

TEST(Graclus, OnlyIsolatedNodes) {
  EXPECT_EQ(graclus_clusters(make_graph(5, {}), 2), (std::vector<int32_t>{0, 0, 1, 1, 0}));
}

TEST(Graclus, StarGraph) {
  // Leaves (degree 1) choose first; only one can join the centre per pass.
  LocalGraph star = make_graph(6, {{0, 1}, {0, 2}, {0, 3}, {0, 4}, {0, 5}});
  EXPECT_EQ(graclus_clusters(star, 2), (std::vector<int32_t>{0, 0, 0, 0, 0, 1}));
}

TEST(Graclus, PrefersNormalisedCutWeight) {
  // Edges (weight): 0-1 (1), 0-2 (1), 1-3 (10), 2-4 (2). Degrees 2, 11, 3, 10, 2; visiting order
  // 0, 4, 2, 3, 1. Node 0 scores 1 (1/2 + 1/11) for node 1 and 1 (1/2 + 1/3) for node 2, so it takes
  // node 2 although node 1 has the lower id; node 4 then finds 2 taken; node 3 takes node 1.
  LocalGraph graph = make_graph(5, {{0, 1}, {0, 2}, {1, 3}, {2, 4}}, {1.0, 1.0, 10.0, 2.0});
  EXPECT_EQ(graclus_clusters(graph, 3), (std::vector<int32_t>{0, 1, 0, 1, 2}));
}

TEST(Graclus, SelfLoopsAreNeverMatched) {
  // Node 0 has only a self-loop, so it is never matched; 1 and 2 pair up. Into one cluster, the
  // remaining two coarse nodes have nothing but self-loops, and the stall rule merges them.
  LocalGraph graph = make_graph(3, {{0, 0}, {1, 1}, {2, 2}, {1, 2}}, {4.0, 4.0, 4.0, 1.0});
  EXPECT_EQ(graclus_clusters(graph, 2), (std::vector<int32_t>{0, 1, 1}));
  EXPECT_EQ(graclus_clusters(graph, 1), (std::vector<int32_t>{0, 0, 0}));
}

// Random trees with hubs: the shape of REDDIT threads, where only one pair forms per pass.
LocalGraph random_star_forest(int64_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<std::pair<int, int>> edges;
  for (int v = 1; v < n; ++v) {
    if (rng.uniform() < 0.05) continue;  // start a new tree
    int parent = rng.uniform() < 0.7 ? static_cast<int>(rng.below(std::min<uint64_t>(v, 3)))
                                     : static_cast<int>(rng.below(v));
    edges.push_back({parent, v});
  }
  return make_graph(n, edges);
}

TEST(Graclus, MatchesPlainReference) {
  for (uint64_t seed = 0; seed < 40; ++seed) {
    Rng rng(seed + 7);
    int64_t n = 1 + static_cast<int64_t>(rng.below(150));
    LocalGraph graph = seed % 2 ? random_graph(n, rng.uniform(0.0, 0.2), seed) : random_star_forest(n, seed);
    if (seed % 4 == 1) {
      // Integer weights and some self-loops: a coarsened graph as level 2 of DIFFPOOL-DET sees it.
      graph = coarsen(graph, reference_graclus(graph, n / 2 + 1), std::min(n, n / 2 + 1));
    }
    for (int64_t max_clusters : {int64_t{1}, int64_t{2}, graph.num_nodes / 5 + 1, graph.num_nodes / 2 + 1}) {
      EXPECT_EQ(graclus_clusters(graph, max_clusters), reference_graclus(graph, max_clusters))
          << "seed " << seed << " max_clusters " << max_clusters;
    }
  }
}

TEST(Graclus, RejectsNegativeWeights) {
  LocalGraph graph = make_graph(3, {{0, 1}, {1, 2}}, {1.0, -1.0});
  EXPECT_THROW(graclus_clusters(graph, 1), Error);
}

TEST(Graclus, RandomGraphsBoundsAndDeterminism) {
  for (uint64_t seed = 0; seed < 30; ++seed) {
    Rng rng(seed + 100);
    int64_t n = 1 + static_cast<int64_t>(rng.below(120));
    double p = rng.uniform(0.0, 0.15);
    LocalGraph graph = random_graph(n, p, seed);
    for (int64_t max_clusters : {int64_t{1}, int64_t{3}, n / 4 + 1, n / 2 + 1, n, n + 5}) {
      auto cluster = graclus_clusters(graph, max_clusters);
      expect_valid_clusters(cluster, n, max_clusters);
      EXPECT_EQ(graclus_clusters(graph, max_clusters), cluster);
    }
  }
}

// Dense S^T A S for the hard assignment S.
std::vector<double> dense_coarsen(const LocalGraph& graph, const std::vector<int32_t>& cluster, int64_t c) {
  std::vector<double> result(c * c, 0.0);
  for (int64_t u = 0; u < graph.num_nodes; ++u) {
    for (int64_t j = graph.offsets[u]; j < graph.offsets[u + 1]; ++j) {
      double w = graph.weights.empty() ? 1.0 : graph.weights[j];
      result[cluster[u] * c + cluster[graph.targets[j]]] += w;
    }
  }
  return result;
}

std::vector<double> to_dense(const LocalGraph& graph) {
  std::vector<double> result(graph.num_nodes * graph.num_nodes, 0.0);
  for (int64_t u = 0; u < graph.num_nodes; ++u) {
    for (int64_t j = graph.offsets[u]; j < graph.offsets[u + 1]; ++j) {
      EXPECT_TRUE(j == graph.offsets[u] || graph.targets[j - 1] < graph.targets[j]) << "row " << u << " unsorted";
      result[u * graph.num_nodes + graph.targets[j]] += graph.weights.empty() ? 1.0 : graph.weights[j];
    }
  }
  return result;
}

TEST(Graclus, CoarsenIsStAS) {
  Rng rng(3);
  std::vector<std::pair<int, int>> edges;
  std::vector<double> weights;
  const int n = 20;
  for (int u = 0; u < n; ++u) {
    for (int v = u; v < n; ++v) {
      if (rng.uniform() < 0.3) {
        edges.push_back({u, v});
        weights.push_back(rng.uniform(0.5, 2.0));
      }
    }
  }
  LocalGraph graph = make_graph(n, edges, weights);
  std::vector<int32_t> cluster(n);
  for (int u = 0; u < n; ++u) cluster[u] = static_cast<int32_t>(rng.below(5));
  LocalGraph coarse = coarsen(graph, cluster, 6);  // cluster 5 is empty: a row with no entries
  EXPECT_EQ(coarse.num_nodes, 6);
  auto expected = dense_coarsen(graph, cluster, 6);
  auto actual = to_dense(coarse);
  for (size_t i = 0; i < expected.size(); ++i) EXPECT_NEAR(actual[i], expected[i], 1e-12) << i;
  EXPECT_EQ(coarse.offsets[6], coarse.offsets[5]);

  // Unweighted input, clusters from graclus itself, and coarsening twice (level 2 of DIFFPOOL-DET).
  LocalGraph unweighted = random_graph(60, 0.1, 11);
  auto level1 = graclus_clusters(unweighted, 15);
  LocalGraph coarse1 = coarsen(unweighted, level1, 15);
  auto dense1 = dense_coarsen(unweighted, level1, 15);
  auto actual1 = to_dense(coarse1);
  for (size_t i = 0; i < dense1.size(); ++i) EXPECT_DOUBLE_EQ(actual1[i], dense1[i]) << i;
  auto level2 = graclus_clusters(coarse1, 4);
  expect_valid_clusters(level2, 15, 4);
  EXPECT_EQ(graclus_clusters(coarse1, 4), level2);
  LocalGraph coarse2 = coarsen(coarse1, level2, 4);
  // Total weight is preserved through both levels.
  double total0 = static_cast<double>(unweighted.targets.size()), total2 = 0.0;
  for (double w : coarse2.weights) total2 += w;
  EXPECT_DOUBLE_EQ(total2, total0);

  EXPECT_THROW(coarsen(graph, cluster, 4), Error);  // id 4 out of range
}

}  // namespace
}  // namespace diffpool
