#pragma once
// Deterministic Graclus-style clustering for DIFFPOOL-DET (paper section 4.1; Dhillon et al. 2007).
//
// Repeated greedy matching by normalised-cut weight: visit unmatched nodes in a fixed order, match
// each with the unmatched neighbour that maximises w_uv (1/d_u + 1/d_v), merge matched pairs, and
// repeat on the coarsened graph until at most `max_clusters` clusters remain. When matching stalls
// (no edge joins two clusters, e.g. disconnected parts), the two smallest clusters are merged
// (ties broken by lowest id) until the bound holds. No randomness: the same graph always gives the
// same clustering.
//
// Choices fixed by the implementation (graclus.cpp, which explains them):
//  * visiting order of a pass: nodes sorted by (weighted degree ascending, id ascending), where the
//    weighted degree is the row sum including any self-loop; a pass stops as soon as max_clusters
//    is reached, so exactly min(num_nodes, max_clusters) clusters come out;
//  * ties between partners go to the lowest id; cluster ids always follow the smallest original
//    member, so "lowest id" means "holds the lowest original node";
//  * "smallest clusters" means fewest original nodes;
//  * self-loops and zero-weight edges are never matched; weights must be finite and >= 0;
//    repeated targets in one row count as one edge with the summed weight.
#include <cstdint>
#include <vector>

namespace diffpool {

// Weighted undirected graph as a symmetric CSR over local node ids 0..n-1.
struct LocalGraph {
  int64_t num_nodes = 0;
  std::vector<int64_t> offsets;   // [num_nodes + 1]
  std::vector<int32_t> targets;
  std::vector<double> weights;    // empty: all weights 1
};

// cluster[v] in 0..c-1 with c = min(num_nodes, max_clusters) clusters numbered by the order of
// their smallest member; every cluster is non-empty.
std::vector<int32_t> graclus_clusters(const LocalGraph& graph, int64_t max_clusters);

// The coarsened graph: w'(a, b) = sum of w(u, v) over u in a, v in b (self-loops a == b kept),
// i.e. S^T A S for the hard assignment S. num_clusters = 1 + max(cluster) (a larger value gives
// empty rows). Rows are sorted by target and weights are always filled in.
LocalGraph coarsen(const LocalGraph& graph, const std::vector<int32_t>& cluster, int64_t num_clusters);

}  // namespace diffpool
