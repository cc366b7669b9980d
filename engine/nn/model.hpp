#pragma once
// The DiffPool model (Ying et al., NeurIPS 2018) and the GraphSAGE baseline.
//
// Level l (0 = the input graphs) runs an embedding GNN, Z_l = GNN_embed(A_l, X_l), and, except
// at the last level, an assignment GNN, S_l = softmax(GNN_pool(A_l, X_l)) with k_{l+1} clusters
// (paper eqs. 1-5). Pooling gives X_{l+1} = S_l^T Z_l and A_{l+1} = S_l^T A_l S_l per graph.
// Level 0 is sparse (block-diagonal CSR over packed node rows; for dense graphs also one dense block
// per graph, engine/data/batch.hpp); every later level has exactly
// k_l rows per graph and is dense, [B*k_l, k_l]. Each level's Z_l is read out (max, mean or sum
// per graph); the readouts are concatenated and classified by an MLP.
//
// Auxiliary losses per pooling level, averaged over the graphs of the batch:
//   link prediction  ||A_l - S_l S_l^T||_F, computed as ||A||^2 - 2 tr(S^T A S) + ||S^T S||^2
//                    so no n x n matrix is ever formed;
//   entropy          (1/n) sum_i H(S_l[i, :]).
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "engine/autodiff/tape.hpp"
#include "engine/data/batch.hpp"
#include "engine/nn/model_config.hpp"
#include "engine/nn/parameters.hpp"
#include "engine/ops/blocks.hpp"

namespace diffpool {

struct LevelOutput {
  Variable* features = nullptr;          // X_l: level input [rows_l, F_l]
  Variable* embedding = nullptr;         // Z_l [rows_l, D_l]
  Variable* assignment = nullptr;        // S_l [rows_l, k_{l+1}] (not at the last level)
  Variable* pooled_adjacency = nullptr;  // A_{l+1} [B*k_{l+1}, k_{l+1}] (not at the last level)
  Variable* link_loss = nullptr;         // one element, mean over graphs (not at the last level)
  Variable* entropy_loss = nullptr;      // one element, mean over graphs (not at the last level)
  // Per-graph cluster counts (cluster_rule per_graph): S_l and A_{l+1} are ragged, one block per
  // graph ([n_g, k_g] and [k_g, k_g], engine/ops/blocks.hpp); null with one count for all graphs.
  const Blocks* assignment_blocks = nullptr;
  const Blocks* pooled_blocks = nullptr;
};

struct ForwardOutput {
  std::vector<LevelOutput> levels;
  Variable* graph_embedding = nullptr;      // [B, sum_l D_l], the concatenated readouts
  Variable* logits = nullptr;               // [B, C]
  Variable* classification_loss = nullptr;  // mean cross-entropy, one element
  Variable* link_loss = nullptr;            // sum over levels (unweighted), or null without pooling
  Variable* entropy_loss = nullptr;         // sum over levels (unweighted), or null without pooling
  Variable* loss = nullptr;                 // classification + weighted auxiliary losses
  std::deque<Segments> segments;            // rows of the pooled levels; kept alive for backward
  std::deque<Blocks> blocks;                // per-graph block layouts (per_graph rule); kept alive
  std::deque<BlockContext> block_contexts;  // what the block ops of the tape refer to
  std::vector<Csr> graph_adjacency;         // level 0 per graph, graph-local indices (per_graph rule)
  std::vector<Tensor> graph_offsets;        // level 0 per graph, i32 {0, n_g} (per_graph rule)
};

class DiffPoolModel {
 public:
  // in_features: node feature width; max_nodes: the dataset's largest graph (for cluster counts).
  DiffPoolModel(const ModelConfig& config, int64_t in_features, int num_classes, int64_t max_nodes);

  const ModelConfig& config() const { return config_; }
  ParameterStore& parameters() { return params_; }
  const ParameterStore& parameters() const { return params_; }
  const std::vector<int64_t>& cluster_counts() const { return clusters_; }
  // DIFFPOOL-DET: the Graclus assignments of every graph of the dataset, into this model's counts.
  FixedAssignments fixed_assignments(const GraphDataset& dataset) const;
  int num_classes() const { return num_classes_; }
  int64_t in_features() const { return in_features_; }

  // One forward pass over a batch. training: batch-norm batch statistics and dropout (seeded by
  // dropout_seed); otherwise running statistics and no dropout. Record on the tape to train.
  ForwardOutput forward(Tape& tape, const GraphBatch& batch, bool training, uint64_t dropout_seed) const;

  std::string summary() const;  // layers, widths, cluster counts and parameter count

 private:
  struct SageLayer {
    ParamId weight;  // [2 * in, out]: rows [0, in) act on the node itself, [in, 2 in) on the neighbour mean
    ParamId bias;    // [out]
    ParamId bn_gamma, bn_beta;
    BufferId bn_mean, bn_var;
    int64_t in = 0, out = 0;
    bool normalize = false, activation = false, batch_norm = false;
  };
  struct Block {
    std::vector<SageLayer> layers;
    int64_t out_width = 0;  // width of the block's output (with concat_layers: all layers' widths)
  };
  struct Level {
    Block embed;
    Block assign;  // empty when the level does not pool or assignments are fixed
  };

  // One forward pass's state (tape, parameter variables, dropout stream), the graph a level's
  // GNNs run on, and what pooling a level gives; defined in model.cpp.
  struct Pass;
  struct LevelGraph;
  struct PooledLevel;

  Block make_block(const std::string& name, int64_t in, int64_t hidden, int64_t out, int layers, bool embedding);

  // The steps of forward(), in the order it runs them (model.cpp).
  Variable* convolution_block(Pass& pass, const Block& block, const LevelGraph& graph, Variable* x,
                              bool embedding) const;
  Variable* sage_layer(Pass& pass, const SageLayer& layer, const LevelGraph& graph, Variable* x) const;
  Variable* assignment(Pass& pass, const Level& level, const LevelGraph& graph, Variable* x, int level_index,
                       int64_t clusters) const;
  PooledLevel pool_level(Pass& pass, const LevelGraph& graph, Variable* s, Variable* z, int64_t clusters,
                         std::deque<Segments>& keep) const;
  Variable* link_loss(Pass& pass, const LevelGraph& graph, Variable* s, Variable* as) const;
  Variable* link_bce_loss(Pass& pass, const LevelGraph& graph, Variable* s) const;
  Variable* link_frobenius_loss(Pass& pass, const LevelGraph& graph, Variable* s, Variable* as) const;
  // The tails both cluster rules share: per-row BCE, per-graph squared norms, per-node S log S.
  Variable* link_bce_mean(Pass& pass, const LevelGraph& graph, Variable* row_losses) const;
  Variable* link_frobenius_mean(Pass& pass, const LevelGraph& graph, Variable* sq) const;
  Variable* entropy_mean(Pass& pass, const LevelGraph& graph, Variable* node_xlogx) const;
  Variable* entropy_loss(Pass& pass, const LevelGraph& graph, Variable* s) const;
  LevelGraph pooled_graph(Pass& pass, const PooledLevel& pooled) const;
  Variable* readout(Pass& pass, const std::vector<Variable*>& level_readouts, ForwardOutput& out) const;
  void add_losses(Pass& pass, const GraphBatch& batch, ForwardOutput& out) const;
  Variable* maybe_dropout(Pass& pass, Variable* x) const;
  // A GraphSAGE layer's input: x (after dropout) and the mean of its neighbours, (N_l, F) each.
  struct LayerInput {
    Variable* x;
    Variable* neighbours;
  };
  LayerInput layer_input(Pass& pass, const LevelGraph& graph, Variable* x) const;
  Variable* dense_level0_product(Pass& pass, const Tensor& blocks, Variable* x, const Blocks* x_blocks = nullptr) const;
  // Per-graph cluster counts: the same steps over one block per graph (model.cpp).
  bool per_graph() const { return config_.cluster_rule == ClusterRule::per_graph && config_.has_pooling(); }
  Variable* assignment_per_graph(Pass& pass, const Level& level, const LevelGraph& graph, Variable* x,
                                 int level_index, const Blocks& blocks) const;
  PooledLevel pool_level_per_graph(Pass& pass, const LevelGraph& graph, Variable* s, const Blocks& s_blocks,
                                   Variable* z) const;
  Variable* link_loss_per_graph(Pass& pass, const LevelGraph& graph, Variable* s, const Blocks& s_blocks,
                                Variable* as) const;
  Variable* entropy_loss_per_graph(Pass& pass, const LevelGraph& graph, Variable* s, const Blocks& s_blocks) const;

  ModelConfig config_;
  int64_t in_features_;
  int num_classes_;
  std::vector<int64_t> clusters_;
  std::vector<Level> levels_;
  std::vector<ParamId> mlp_weights_, mlp_biases_;
  ParameterStore params_;
};

}  // namespace diffpool
