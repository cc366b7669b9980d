#pragma once
// Settings of a DiffPool model (the `model:` section of an experiment file).
//
// Defaults follow the paper (Ying et al., NeurIPS 2018, section 4.1). Where the authors' code
// differs from the paper, the difference is an option here, named in docs/MODEL.md.
#include <cstdint>
#include <string>
#include <vector>

#include "engine/core/setting.hpp"

namespace diffpool {

enum class Variant : uint8_t {
  diffpool,       // learned assignments, link-prediction and entropy losses
  diffpool_nolp,  // learned assignments, no link-prediction loss
  diffpool_det,   // fixed assignments from deterministic Graclus clustering
  graphsage,      // GraphSAGE with global pooling (no hierarchy): the paper's baseline
};
const EnumNames<Variant>& variant_names();
const char* variant_name(Variant v);
Variant parse_variant(const std::string& text);

enum class Readout : uint8_t { max, mean, sum };
const EnumNames<Readout>& readout_names();
const char* readout_name(Readout r);
Readout parse_readout(const std::string& text);

// How the link-prediction loss ||A - S S^T||_F of each graph is scaled.
enum class LinkLossNorm : uint8_t {
  frobenius,          // ||A - S S^T||_F per graph, averaged over graphs (the paper's formula)
  frobenius_squared,  // ||A - S S^T||_F^2 per graph
  per_entry,          // ||A - S S^T||_F / n^2 per graph (PyTorch Geometric divides by the entry count)
  bce,                // the authors' code: binary cross-entropy between A and min(S S^T, 1) over every
                      // node pair, divided by the pairs of the batch; first pooling level only
};
const EnumNames<LinkLossNorm>& link_loss_norm_names();
const char* link_loss_norm_name(LinkLossNorm n);
LinkLossNorm parse_link_loss_norm(const std::string& text);

// How a pooled (dense, weighted) adjacency aggregates neighbours in GraphSAGE layers after pooling.
enum class DenseAggregation : uint8_t {
  mean,  // (A' X) / rowsum(A'): GraphSAGE-mean on weighted graphs (the paper)
  sum,   // A' X, as the authors' code does after pooling
};
const EnumNames<DenseAggregation>& dense_aggregation_names();
const char* dense_aggregation_name(DenseAggregation a);
DenseAggregation parse_dense_aggregation(const std::string& text);

// Batch norm after hidden GraphSAGE layers.
enum class BatchNormMode : uint8_t {
  trained,    // learned scale and shift, running statistics for evaluation (the paper; nn.BatchNorm1d)
  per_batch,  // no learned parameters, the current batch's statistics in training and evaluation:
              // what the authors' code computes, as it builds a fresh BatchNorm1d at every forward pass
};
const EnumNames<BatchNormMode>& batch_norm_mode_names();
const char* batch_norm_mode_name(BatchNormMode m);
BatchNormMode parse_batch_norm_mode(const std::string& text);

// How many clusters a pooling level has (docs/MODEL.md, "Cluster counts").
enum class ClusterRule : uint8_t {
  largest_graph,  // one count per level for every graph: a ratio of the dataset's largest graph (the
                  // authors' code, which pads every graph to that size), or model.clusters
  per_graph,      // graph g at level l gets k = max(1, ceil(ratio * n)), n its size at level l (the
                  // paper's sentence read graph by graph); model.clusters, if given, caps each level
};
const EnumNames<ClusterRule>& cluster_rule_names();
const char* cluster_rule_name(ClusterRule r);
ClusterRule parse_cluster_rule(const std::string& text);

// The allowed values of the numeric settings, shared by ModelConfig::validate() and the
// experiment-file schema (runner/config.cpp).
namespace model_limits {
inline constexpr IntRange pool_levels{0, 8};
inline constexpr IntRange conv_layers{1, 16};        // each entry
inline constexpr IntRange width{1, 1 << 16};         // hidden_dim, embedding_dim, each mlp_hidden entry
inline constexpr IntRange clusters{1, 1 << 24};      // each entry
inline constexpr Range cluster_ratio{0.0, 1.0, true, false};
inline constexpr Range dropout{0.0, 1.0, false, true};
inline constexpr Range loss_weight{0.0, 1e6};        // link_weight, entropy_weight
inline constexpr Range dense_degree_eps{0.0, 1.0, true, false};
inline constexpr Range batch_norm_momentum{0.0, 1.0};
inline constexpr Range batch_norm_eps{0.0, 1.0, true, false};
}  // namespace model_limits

struct ModelConfig {
  Variant variant = Variant::diffpool;
  int pool_levels = 1;                  // DiffPool layers (the paper: 2, or 1 for small datasets)
  // GraphSAGE layers per level: [before the first pooling, after it, ...]; the paper applies a
  // DiffPool layer after two GraphSAGE layers and three graph convolutions after each DiffPool
  // layer. Missing entries repeat the last one. The GraphSAGE baseline uses their sum.
  std::vector<int> conv_layers = {2, 3, 3};
  int hidden_dim = 64;                  // width of hidden GraphSAGE layers
  int embedding_dim = 64;               // width of each embedding GNN's last layer
  // Clusters of each pooling level: a ratio of the previous level's size, where level 1's is the
  // dataset's largest graph (the paper's rule: 25% with two levels, 10% with one), or absolute
  // counts when `clusters` is non-empty.
  double cluster_ratio = 0.25;
  std::vector<int64_t> clusters;
  ClusterRule cluster_rule = ClusterRule::largest_graph;
  Readout readout = Readout::max;
  bool concat_layers = false;           // readout/pool the concatenation of every layer's output (authors' code)
  std::vector<int> mlp_hidden = {50};   // hidden widths of the prediction MLP
  double dropout = 0.0;
  bool batch_norm = true;               // after every hidden GraphSAGE layer (paper)
  BatchNormMode batch_norm_mode = BatchNormMode::trained;
  bool l2_normalize = true;             // l2-normalised node embeddings at every layer (paper)
  double link_weight = 1.0;             // weight of the link-prediction loss (per level)
  double entropy_weight = 1.0;          // weight of the assignment-entropy loss (per level)
  LinkLossNorm link_norm = LinkLossNorm::frobenius;
  DenseAggregation dense_aggregation = DenseAggregation::mean;
  double dense_degree_eps = 1e-6;       // added to pooled degrees before dividing (mean aggregation)
  double batch_norm_momentum = 0.1;
  double batch_norm_eps = 1e-5;

  bool has_pooling() const { return variant != Variant::graphsage && pool_levels > 0; }
  bool learned_assignments() const { return variant == Variant::diffpool || variant == Variant::diffpool_nolp; }
  int conv_layers_at(int level) const;
  // Clusters per pooling level for a dataset whose largest graph has max_nodes nodes.
  std::vector<int64_t> cluster_counts(int64_t max_nodes) const;
  // per_graph: the clusters of a graph of `rows` rows at pooling level `level` (0: the input graph),
  // max(1, ceil(ratio * rows)), capped by model.clusters when given. With a graph of max_nodes nodes
  // it gives cluster_counts(max_nodes), the width of each level's assignment GNN.
  int64_t clusters_for(int level, int64_t rows) const;
  // Throws InputError naming the first invalid setting (the ranges of model_limits, at least one
  // conv_layers entry, and a pooling level for the DiffPool variants).
  void validate() const;
};

}  // namespace diffpool
