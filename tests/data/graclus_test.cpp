// Graclus clustering and coarsening (DIFFPOOL-DET).
#include <gtest/gtest.h>

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
