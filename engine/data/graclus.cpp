// Deterministic Graclus-style clustering (see graclus.hpp).
//
// Glossary: n = nodes of the input graph, c = clusters at the current level ("coarse nodes"),
// d_a = weighted degree of coarse node a = row sum of the coarse adjacency, self-loop included.
// Since the coarse adjacency is S^T A S, d_a equals the sum of the original degrees of a's members,
// which is the vertex weight Graclus uses for the normalised cut (Dhillon et al. 2007, section 4).
//
// How: clusters are contracted in place (union-find plus per-cluster neighbour lists) instead of
// coarsening the graph after every pass, because on star-like graphs (REDDIT threads) only one pair
// forms per pass. tests/data/graclus_test.cpp checks the result against the plain pass-and-coarsen
// loop.
//
// Choices that the header leaves open, fixed here so that results never change:
//  * visiting order of a matching pass: coarse nodes sorted by (d_a ascending, id ascending), as in
//    METIS's sorted heavy-edge matching: low-degree nodes choose first, so they are not left over;
//  * a node's partner: the unmatched neighbour b != a with the largest w_ab (1/d_a + 1/d_b); ties go
//    to the lowest id; edges of weight <= 0 and self-loops are never matched;
//  * a pass stops as soon as the cluster count reaches max_clusters, so exactly
//    min(n, max_clusters) clusters come out;
//  * coarse node ids are always ordered by their smallest original member, so "lowest id" means
//    "holds the lowest original node";
//  * when a pass matches nothing, the two clusters with the fewest original nodes are merged (ties
//    to the lowest id), repeatedly, until max_clusters remain.
#include "engine/data/graclus.hpp"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <numeric>
#include <set>

#include "engine/core/error.hpp"

namespace diffpool {

namespace {

void check_graph(const LocalGraph& graph) {
  DP_CHECK(graph.num_nodes >= 0 && graph.num_nodes <= INT32_MAX, "num_nodes {}", graph.num_nodes);
  DP_CHECK(static_cast<int64_t>(graph.offsets.size()) == graph.num_nodes + 1 || (graph.num_nodes == 0 && graph.offsets.empty()),
           "offsets has {} entries for {} nodes", graph.offsets.size(), graph.num_nodes);
  if (graph.num_nodes == 0) return;
  DP_CHECK(graph.offsets.front() == 0 && graph.offsets.back() == static_cast<int64_t>(graph.targets.size()),
           "offsets span [{}, {}) but there are {} targets", graph.offsets.front(), graph.offsets.back(),
           graph.targets.size());
  DP_CHECK(graph.weights.empty() || graph.weights.size() == graph.targets.size(), "{} weights for {} targets",
           graph.weights.size(), graph.targets.size());
  for (int32_t target : graph.targets) {
    DP_CHECK(target >= 0 && target < graph.num_nodes, "target {} of a graph with {} nodes", target, graph.num_nodes);
  }
}

inline double weight_at(const LocalGraph& graph, int64_t j) {
  return graph.weights.empty() ? 1.0 : graph.weights[j];
}

// Merges the two clusters with the fewest original nodes (ties: lowest id) until `target` remain.
// Returns the new id of every cluster; ids stay ordered by smallest member.
std::vector<int32_t> merge_smallest(const std::vector<int64_t>& size, int64_t target) {
  const int64_t c = static_cast<int64_t>(size.size());
  std::vector<int32_t> parent(static_cast<std::size_t>(c));
  std::iota(parent.begin(), parent.end(), 0);
  std::set<std::pair<int64_t, int32_t>> by_size;  // (original nodes, id)
  for (int32_t a = 0; a < c; ++a) by_size.emplace(size[a], a);
  for (int64_t count = c; count > target; --count) {
    auto [size_a, a] = *by_size.begin();
    by_size.erase(by_size.begin());
    auto [size_b, b] = *by_size.begin();
    by_size.erase(by_size.begin());
    // The merged cluster keeps the lower id, which is the one holding the smaller original node.
    int32_t keep = std::min(a, b);
    parent[std::max(a, b)] = keep;
    by_size.emplace(size_a + size_b, keep);
  }
  // Representatives have lower ids than the clusters merged into them, so one ascending sweep
  // resolves every chain; then number the representatives in ascending order.
  std::vector<int32_t> result(static_cast<std::size_t>(c));
  int32_t next = 0;
  for (int32_t a = 0; a < c; ++a) {
    int32_t p = parent[a];
    result[a] = (p == a) ? next++ : result[p];
  }
  return result;
}

}  // namespace

std::vector<int32_t> graclus_clusters(const LocalGraph& graph, int64_t max_clusters) {
  DP_CHECK(max_clusters >= 1, "max_clusters {}", max_clusters);
  check_graph(graph);
  for (double w : graph.weights) DP_CHECK(w >= 0.0 && w < INFINITY, "edge weight {} (must be finite and >= 0)", w);
  const int32_t n = static_cast<int32_t>(graph.num_nodes);
  std::vector<int32_t> identity(static_cast<std::size_t>(n));
  std::iota(identity.begin(), identity.end(), 0);
  if (n <= max_clusters) return identity;  // every node its own cluster

  // Clusters are contracted in place instead of rebuilding the coarse graph after every pass: on
  // star-like graphs (REDDIT threads) only one pair forms per pass, so there are thousands of passes
  // and each must cost about O(c + edges scanned), not a full coarsening.
  //  * A cluster is named by its smallest original node, its root; union-find links the others.
  //  * links[a]: (any member of a neighbouring cluster, weight). Stale members are resolved with
  //    find() and the list is compacted whenever a is visited; links inside a cluster are dropped.
  //  * degree[a] is the row sum of a's coarse row, self-loop included (merged: d_a + d_b).
  struct Link {
    int32_t node;
    double weight;
  };
  std::vector<int32_t> parent = identity;
  auto find = [&](int32_t v) {
    while (parent[v] != v) {
      parent[v] = parent[parent[v]];
      v = parent[v];
    }
    return v;
  };
  std::vector<std::vector<Link>> links(static_cast<std::size_t>(n));
  std::vector<double> degree(static_cast<std::size_t>(n), 0.0);
  for (int32_t u = 0; u < n; ++u) {
    for (int64_t j = graph.offsets[u]; j < graph.offsets[u + 1]; ++j) {
      int32_t v = graph.targets[j];
      degree[u] += weight_at(graph, j);
      if (v != u) links[u].push_back({v, weight_at(graph, j)});
    }
  }
  std::vector<int64_t> size(static_cast<std::size_t>(n), 1);  // original nodes per cluster
  auto visit_before = [&](int32_t a, int32_t b) {
    double da = degree[a], db = degree[b];
    return da < db || (da == db && a < b);
  };
  std::vector<int32_t> order = identity;  // the live roots in visiting order
  std::sort(order.begin(), order.end(), visit_before);

  std::vector<int32_t> partner(static_cast<std::size_t>(n), -1);
  std::vector<double> weight_to(static_cast<std::size_t>(n), 0.0);  // sparse accumulator over roots
  std::vector<char> seen(static_cast<std::size_t>(n), 0);
  std::vector<int32_t> touched;
  std::vector<std::pair<int32_t, int32_t>> pairs;
  int64_t count = n;
  while (count > max_clusters) {
    // One matching pass over the clusters as they were at its start.
    const std::size_t max_pairs = static_cast<std::size_t>(count - max_clusters);
    pairs.clear();
    for (int32_t a : order) {
      if (pairs.size() == max_pairs) break;
      if (partner[a] >= 0) continue;
      auto& row = links[a];
      touched.clear();
      for (const Link& link : row) {
        int32_t b = find(link.node);
        if (b == a) continue;  // inside a: already part of its degree
        if (!seen[b]) {
          seen[b] = 1;
          touched.push_back(b);
        }
        weight_to[b] += link.weight;
      }
      row.clear();
      int32_t best = -1;
      double best_score = 0.0;
      const double inverse_degree_a = 1.0 / degree[a];
      for (int32_t b : touched) {
        double w = weight_to[b];
        row.push_back({b, w});
        weight_to[b] = 0.0;
        seen[b] = 0;
        if (partner[b] >= 0 || !(w > 0.0)) continue;
        // d_a, d_b >= w > 0 here (weights are non-negative), so the score is finite.
        double score = w * (inverse_degree_a + 1.0 / degree[b]);
        if (best < 0 || score > best_score || (score == best_score && b < best)) {
          best = b;
          best_score = score;
        }
      }
      if (best >= 0) {
        partner[a] = best;
        partner[best] = a;
        pairs.emplace_back(std::min(a, best), std::max(a, best));
      }
    }
    if (pairs.empty()) {
      // Stalled: no edge joins two clusters (each connected part is one cluster already).
      std::vector<int32_t> roots = order;
      std::sort(roots.begin(), roots.end());
      std::vector<int64_t> root_size;
      for (int32_t r : roots) root_size.push_back(size[r]);
      std::vector<int32_t> group = merge_smallest(root_size, max_clusters);
      std::vector<int32_t> group_of_root(static_cast<std::size_t>(n), -1);
      for (std::size_t i = 0; i < roots.size(); ++i) group_of_root[roots[i]] = group[i];
      std::vector<int32_t> cluster(static_cast<std::size_t>(n));
      for (int32_t v = 0; v < n; ++v) cluster[v] = group_of_root[find(v)];
      return cluster;
    }
    // Contract every pair into its lower id (which holds the smaller original node).
    std::vector<int32_t> merged;
    for (auto [keep, other] : pairs) {
      parent[other] = keep;
      degree[keep] += degree[other];
      size[keep] += size[other];
      auto& into = links[keep];
      auto& from = links[other];
      if (into.size() < from.size()) into.swap(from);  // append the shorter list
      into.insert(into.end(), from.begin(), from.end());
      std::vector<Link>().swap(from);
      merged.push_back(keep);
    }
    // New visiting order: unmatched clusters keep their relative order; merged ones are placed by
    // their new degree.
    std::vector<int32_t> unmatched;
    unmatched.reserve(order.size());
    for (int32_t a : order) {
      if (partner[a] < 0) unmatched.push_back(a);
    }
    for (auto [keep, other] : pairs) partner[keep] = partner[other] = -1;
    std::sort(merged.begin(), merged.end(), visit_before);
    order.clear();
    std::merge(unmatched.begin(), unmatched.end(), merged.begin(), merged.end(), std::back_inserter(order), visit_before);
    count -= static_cast<int64_t>(pairs.size());
  }
  // Number the roots in ascending order: that is the order of their smallest member.
  std::vector<int32_t> rank(static_cast<std::size_t>(n), -1);
  int32_t next = 0;
  for (int32_t v = 0; v < n; ++v) {
    if (find(v) == v) rank[v] = next++;
  }
  std::vector<int32_t> cluster(static_cast<std::size_t>(n));
  for (int32_t v = 0; v < n; ++v) cluster[v] = rank[find(v)];
  return cluster;
}

LocalGraph coarsen(const LocalGraph& graph, const std::vector<int32_t>& cluster, int64_t num_clusters) {
  check_graph(graph);
  DP_CHECK(static_cast<int64_t>(cluster.size()) == graph.num_nodes, "{} cluster ids for {} nodes", cluster.size(),
           graph.num_nodes);
  DP_CHECK(num_clusters >= 0, "num_clusters {}", num_clusters);
  for (int32_t a : cluster) DP_CHECK(a >= 0 && a < num_clusters, "cluster id {} of {} clusters", a, num_clusters);

  // Members of each cluster (counting sort), then one sparse accumulation per cluster row.
  std::vector<int64_t> member_start(static_cast<std::size_t>(num_clusters) + 1, 0);
  for (int32_t a : cluster) ++member_start[a + 1];
  for (int64_t a = 0; a < num_clusters; ++a) member_start[a + 1] += member_start[a];
  std::vector<int32_t> members(cluster.size());
  {
    std::vector<int64_t> cursor(member_start.begin(), member_start.end() - 1);
    for (int32_t v = 0; v < graph.num_nodes; ++v) members[cursor[cluster[v]]++] = v;
  }

  LocalGraph result;
  result.num_nodes = num_clusters;
  result.offsets.assign(static_cast<std::size_t>(num_clusters) + 1, 0);
  std::vector<double> sum(static_cast<std::size_t>(num_clusters), 0.0);
  std::vector<char> seen(static_cast<std::size_t>(num_clusters), 0);
  std::vector<int32_t> touched;
  for (int64_t a = 0; a < num_clusters; ++a) {
    touched.clear();
    for (int64_t m = member_start[a]; m < member_start[a + 1]; ++m) {
      int32_t u = members[m];
      for (int64_t j = graph.offsets[u]; j < graph.offsets[u + 1]; ++j) {
        int32_t b = cluster[graph.targets[j]];
        if (!seen[b]) {
          seen[b] = 1;
          touched.push_back(b);
        }
        sum[b] += weight_at(graph, j);
      }
    }
    std::sort(touched.begin(), touched.end());
    for (int32_t b : touched) {
      result.targets.push_back(b);
      result.weights.push_back(sum[b]);
      sum[b] = 0.0;
      seen[b] = 0;
    }
    result.offsets[a + 1] = static_cast<int64_t>(result.targets.size());
  }
  return result;
}

}  // namespace diffpool
