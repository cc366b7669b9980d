// Deterministic Graclus-style clustering (see graclus.hpp).
//
// Glossary: n = nodes of the input graph, c = clusters at the current level ("coarse nodes"),
// d_a = weighted degree of coarse node a = row sum of the coarse adjacency, self-loop included.
// Since the coarse adjacency is S^T A S, d_a equals the sum of the original degrees of a's members,
// which is the vertex weight Graclus uses for the normalised cut (Dhillon et al. 2007, section 4).
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
#include <numeric>
#include <set>

#include "engine/core/error.hpp"

namespace diffpool {

namespace {

void check_graph(const LocalGraph& graph) {
  DP_CHECK(graph.num_nodes >= 0, "num_nodes {}", graph.num_nodes);
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
  return graph.weights.empty() ? 1.0 : graph.weights[static_cast<std::size_t>(j)];
}

// One matching pass over `graph` (c nodes); returns partner[a] (-1: unmatched) and the number of
// pairs, at most `max_pairs`.
int64_t match_pass(const LocalGraph& graph, int64_t max_pairs, std::vector<int32_t>& partner) {
  const int64_t c = graph.num_nodes;
  std::vector<double> degree(static_cast<std::size_t>(c), 0.0);
  for (int64_t a = 0; a < c; ++a) {
    for (int64_t j = graph.offsets[static_cast<std::size_t>(a)]; j < graph.offsets[static_cast<std::size_t>(a) + 1]; ++j)
      degree[static_cast<std::size_t>(a)] += weight_at(graph, j);
  }
  std::vector<int32_t> order(static_cast<std::size_t>(c));
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    double da = degree[static_cast<std::size_t>(a)], db = degree[static_cast<std::size_t>(b)];
    return da < db || (da == db && a < b);
  });
  partner.assign(static_cast<std::size_t>(c), -1);
  int64_t pairs = 0;
  for (int32_t a : order) {
    if (pairs == max_pairs) break;
    if (partner[static_cast<std::size_t>(a)] >= 0) continue;
    int32_t best = -1;
    double best_score = 0.0;
    for (int64_t j = graph.offsets[static_cast<std::size_t>(a)]; j < graph.offsets[static_cast<std::size_t>(a) + 1]; ++j) {
      int32_t b = graph.targets[static_cast<std::size_t>(j)];
      double w = weight_at(graph, j);
      if (b == a || partner[static_cast<std::size_t>(b)] >= 0 || !(w > 0.0)) continue;
      // d_a, d_b >= w > 0 here, so the score is finite.
      double score = w * (1.0 / degree[static_cast<std::size_t>(a)] + 1.0 / degree[static_cast<std::size_t>(b)]);
      if (best < 0 || score > best_score || (score == best_score && b < best)) {
        best = b;
        best_score = score;
      }
    }
    if (best >= 0) {
      partner[static_cast<std::size_t>(a)] = best;
      partner[static_cast<std::size_t>(best)] = a;
      ++pairs;
    }
  }
  return pairs;
}

// Merges the two clusters with the fewest original nodes (ties: lowest id) until `target` remain.
// Returns the new id of every cluster; ids stay ordered by smallest member.
std::vector<int32_t> merge_smallest(const std::vector<int64_t>& size, int64_t target) {
  const int64_t c = static_cast<int64_t>(size.size());
  std::vector<int32_t> parent(static_cast<std::size_t>(c));
  std::iota(parent.begin(), parent.end(), 0);
  std::set<std::pair<int64_t, int32_t>> by_size;  // (original nodes, id)
  for (int32_t a = 0; a < c; ++a) by_size.emplace(size[static_cast<std::size_t>(a)], a);
  for (int64_t count = c; count > target; --count) {
    auto [size_a, a] = *by_size.begin();
    by_size.erase(by_size.begin());
    auto [size_b, b] = *by_size.begin();
    by_size.erase(by_size.begin());
    // The merged cluster keeps the lower id, which is the one holding the smaller original node.
    int32_t keep = std::min(a, b);
    parent[static_cast<std::size_t>(std::max(a, b))] = keep;
    by_size.emplace(size_a + size_b, keep);
  }
  // Representatives have lower ids than the clusters merged into them, so one ascending sweep
  // resolves every chain; then number the representatives in ascending order.
  std::vector<int32_t> result(static_cast<std::size_t>(c));
  int32_t next = 0;
  for (int32_t a = 0; a < c; ++a) {
    int32_t p = parent[static_cast<std::size_t>(a)];
    result[static_cast<std::size_t>(a)] = (p == a) ? next++ : result[static_cast<std::size_t>(p)];
  }
  return result;
}

}  // namespace

std::vector<int32_t> graclus_clusters(const LocalGraph& graph, int64_t max_clusters) {
  DP_CHECK(max_clusters >= 1, "max_clusters {}", max_clusters);
  check_graph(graph);
  const int64_t n = graph.num_nodes;
  std::vector<int32_t> cluster(static_cast<std::size_t>(n));  // original node -> current coarse node
  std::iota(cluster.begin(), cluster.end(), 0);
  if (n <= max_clusters) return cluster;  // every node its own cluster

  LocalGraph current = graph;
  std::vector<int64_t> size(static_cast<std::size_t>(n), 1);  // original nodes per coarse node
  std::vector<int32_t> partner, group;
  while (current.num_nodes > max_clusters) {
    const int64_t c = current.num_nodes;
    int64_t pairs = match_pass(current, c - max_clusters, partner);
    if (pairs == 0) {
      // Stalled: no edge joins two clusters (each connected part is one cluster already).
      group = merge_smallest(size, max_clusters);
      for (auto& a : cluster) a = group[static_cast<std::size_t>(a)];
      break;
    }
    // A pair takes the next id when its lower member is reached, which keeps the ids ordered by
    // smallest original member.
    group.assign(static_cast<std::size_t>(c), -1);
    int32_t next = 0;
    for (int32_t a = 0; a < c; ++a) {
      if (group[static_cast<std::size_t>(a)] >= 0) continue;
      group[static_cast<std::size_t>(a)] = next;
      if (int32_t b = partner[static_cast<std::size_t>(a)]; b >= 0) group[static_cast<std::size_t>(b)] = next;
      ++next;
    }
    std::vector<int64_t> merged_size(static_cast<std::size_t>(next), 0);
    for (int32_t a = 0; a < c; ++a) merged_size[static_cast<std::size_t>(group[static_cast<std::size_t>(a)])] += size[static_cast<std::size_t>(a)];
    size = std::move(merged_size);
    current = coarsen(current, group, next);
    for (auto& a : cluster) a = group[static_cast<std::size_t>(a)];
  }
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
  for (int32_t a : cluster) ++member_start[static_cast<std::size_t>(a) + 1];
  for (int64_t a = 0; a < num_clusters; ++a) member_start[static_cast<std::size_t>(a) + 1] += member_start[static_cast<std::size_t>(a)];
  std::vector<int32_t> members(cluster.size());
  {
    std::vector<int64_t> cursor(member_start.begin(), member_start.end() - 1);
    for (int32_t v = 0; v < graph.num_nodes; ++v) members[static_cast<std::size_t>(cursor[static_cast<std::size_t>(cluster[static_cast<std::size_t>(v)])]++)] = v;
  }

  LocalGraph result;
  result.num_nodes = num_clusters;
  result.offsets.assign(static_cast<std::size_t>(num_clusters) + 1, 0);
  std::vector<double> sum(static_cast<std::size_t>(num_clusters), 0.0);
  std::vector<char> seen(static_cast<std::size_t>(num_clusters), 0);
  std::vector<int32_t> touched;
  for (int64_t a = 0; a < num_clusters; ++a) {
    touched.clear();
    for (int64_t m = member_start[static_cast<std::size_t>(a)]; m < member_start[static_cast<std::size_t>(a) + 1]; ++m) {
      int32_t u = members[static_cast<std::size_t>(m)];
      for (int64_t j = graph.offsets[static_cast<std::size_t>(u)]; j < graph.offsets[static_cast<std::size_t>(u) + 1]; ++j) {
        int32_t b = cluster[static_cast<std::size_t>(graph.targets[static_cast<std::size_t>(j)])];
        if (!seen[static_cast<std::size_t>(b)]) {
          seen[static_cast<std::size_t>(b)] = 1;
          touched.push_back(b);
        }
        sum[static_cast<std::size_t>(b)] += weight_at(graph, j);
      }
    }
    std::sort(touched.begin(), touched.end());
    for (int32_t b : touched) {
      result.targets.push_back(b);
      result.weights.push_back(sum[static_cast<std::size_t>(b)]);
      sum[static_cast<std::size_t>(b)] = 0.0;
      seen[static_cast<std::size_t>(b)] = 0;
    }
    result.offsets[static_cast<std::size_t>(a) + 1] = static_cast<int64_t>(result.targets.size());
  }
  return result;
}

}  // namespace diffpool
