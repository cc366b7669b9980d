#pragma once
// Batches of graphs without padding.
//
// The node rows of all graphs of a batch are packed into one matrix [N, F] (graph g owns rows
// [offsets[g], offsets[g+1])), so every weight multiplication is one GEMM over the whole batch;
// the level-0 adjacency is block-diagonal CSR. Nothing is padded, dropped or truncated.
// Everything lives in the step's Workspace.
#include <cstdint>
#include <functional>
#include <vector>

#include "engine/backend/backend.hpp"
#include "engine/core/segments.hpp"
#include "engine/data/dataset.hpp"

namespace diffpool {

class Workspace;

// A CSR matrix on the host.
struct HostCsr {
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<int32_t> row_ptr;  // [rows + 1]
  std::vector<int32_t> col_idx;
  std::vector<double> values;
};
HostCsr transpose(const HostCsr& a);
Csr upload_csr(Workspace& workspace, const HostCsr& a, DType dtype);

// DIFFPOOL-DET: fixed hard assignments per graph and pooling level, computed once per dataset.
// clusters[g][l][v] is the cluster (0..k_{l+1}-1) of node v of graph g at level l.
// With per-graph cluster counts, graph g has its own count at each level (counts[g][l]) and its
// one-hot assignment is a [rows, counts[g][l]] block (engine/ops/blocks.hpp).
struct FixedAssignments {
  std::vector<int64_t> clusters_per_level;                     // k_1, k_2, ... (the widest, per graph)
  std::vector<std::vector<std::vector<int32_t>>> clusters;     // [graph][level][node]
  std::vector<std::vector<int64_t>> counts;                    // per-graph counts [graph][level]; empty: k_l
};
// The clusters of a graph with `rows` rows at pooling level `level` (per-graph cluster counts).
using PerGraphClusters = std::function<int64_t(int level, int64_t rows)>;
// Runs Graclus (graclus.hpp) on every graph, then on each coarsened graph, into k_l clusters per
// level, or, with per_graph, into each graph's own count.
FixedAssignments compute_fixed_assignments(const GraphDataset& dataset, const std::vector<int64_t>& clusters_per_level,
                                           const PerGraphClusters& per_graph = {});

// Level 0 as dense per-graph blocks. COLLAB's and IMDB's ego networks are nearly complete, so a
// CSR product over them does about the multiply-adds of a dense one at a fraction of the rate; one
// GEMM per graph over an n_g x n_g block is then several times faster. A batch takes the dense path
// when both hold, from its shapes alone (so every backend decides the same way):
//   nnz >= dense_min_degree * N            (at least 8 neighbours per node on average)
//   sum_g n_g^2 <= dense_max_fill * nnz    (the dense blocks hold at most 4x the stored entries)
// The fill bound sits well below the measured break-even: per-graph SGEMM overtakes the CSR product
// at sum n_g^2 / nnz of about 13 to 14 for graphs of 10 to 74 nodes and 7 to 8 for 150 to 300 nodes
// (build/bench_dense_level; docs/PERFORMANCE.md). The degree floor keeps the molecule and protein
// datasets on the CSR path with unchanged results: every graph of ENZYMES, PROTEINS, NCI1, MUTAG and
// REDDIT-BINARY has fewer than 8 neighbours per node, and every graph of D&D fills its block more
// than 4x, so no batch of them qualifies (tests/data/tu_real_test.cpp). Below the floor the
// neighbour product is small next to the layer's weight product anyway (2F x H per node). Memory:
// at most 2 * dense_max_fill * nnz more elements per batch (A and D^-1 A).
inline constexpr int64_t dense_min_degree = 8;
inline constexpr int64_t dense_max_fill = 4;
bool dense_level0(int64_t nodes, int64_t nnz, int64_t sum_squares);

struct GraphBatch {
  std::vector<int64_t> graph_ids;  // dataset indices, in batch order
  Segments nodes;                  // level-0 node rows per graph
  HostCsr host_adjacency;          // block-diagonal A over batch rows (kept for analysis output)
  Csr adjacency;                   // A (symmetric, so it is its own transpose)
  Csr mean_adjacency;              // D^-1 A: row i averages the neighbours of node i (GraphSAGE mean)
  Csr mean_adjacency_t;            // (D^-1 A)^T, for the backward pass
  Tensor features;                 // [N, F]
  Tensor labels;                   // i32 [B]
  Tensor adjacency_sq_norms;       // [B, 1]: ||A_g||_F^2 per graph (number of directed edges)
  std::vector<Tensor> fixed_assignments;  // DIFFPOOL-DET only: per level, one-hot [rows, k]
  // Level 0 as dense blocks, where dense_level0() holds (else undefined): block g is graph g's
  // n_g x n_g matrix, row-major, graph-local, packed flat [sum_g n_g^2, 1] (engine/ops/blocks.hpp).
  Tensor dense_adjacency;          // A_g
  Tensor dense_mean_adjacency;     // D_g^-1 A_g

  bool dense() const { return dense_mean_adjacency.defined(); }

  int64_t num_graphs() const { return static_cast<int64_t>(graph_ids.size()); }
  int64_t num_nodes() const { return nodes.total_rows(); }
};

// Builds the batch of the given graphs on the workspace's device in `dtype` (f32 or f64).
GraphBatch build_batch(const GraphDataset& dataset, const std::vector<int64_t>& graph_ids, Workspace& workspace,
                       DType dtype, const FixedAssignments* fixed = nullptr);

}  // namespace diffpool
