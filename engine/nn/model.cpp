#include "engine/nn/model.hpp"

#include <algorithm>
#include <numeric>

#include "engine/core/error.hpp"
#include "engine/core/random.hpp"
#include "engine/core/workspace.hpp"
#include "engine/ops/ops.hpp"

namespace diffpool {

DiffPoolModel::Block DiffPoolModel::make_block(const std::string& name, int64_t in, int64_t hidden, int64_t out,
                                               int layers, bool embedding) {
  Block block;
  int64_t width = in;
  for (int i = 0; i < layers; ++i) {
    const bool last = i == layers - 1;
    SageLayer layer;
    layer.in = width;
    layer.out = last ? out : hidden;
    const std::string prefix = fmt::format("{}.layer{}", name, i);
    // Glorot with the ReLU gain over the stacked [W_root; W_neighbour] (fan_in 2 * in), as the
    // authors initialise their graph convolutions; biases start at zero.
    layer.weight = params_.add(prefix + ".weight", Shape{2 * layer.in, layer.out}, Init::glorot_uniform_relu);
    layer.bias = params_.add(prefix + ".bias", Shape{layer.out}, Init::zeros);
    // Hidden layers: l2-normalise, ReLU, batch norm. The last layer of an embedding GNN is
    // l2-normalised only; the last layer of an assignment GNN gives raw logits for the softmax.
    layer.normalize = config_.l2_normalize && (embedding || !last);
    layer.activation = !last;
    layer.batch_norm = config_.batch_norm && !last;
    if (layer.batch_norm && config_.batch_norm_mode == BatchNormMode::trained) {
      layer.bn_gamma = params_.add(prefix + ".bn.gamma", Shape{layer.out}, Init::ones);
      layer.bn_beta = params_.add(prefix + ".bn.beta", Shape{layer.out}, Init::zeros);
      layer.bn_mean = params_.add_buffer(prefix + ".bn.running_mean", Shape{layer.out}, 0.0);
      layer.bn_var = params_.add_buffer(prefix + ".bn.running_var", Shape{layer.out}, 1.0);
    }
    block.out_width = config_.concat_layers && embedding ? block.out_width + layer.out : layer.out;
    block.layers.push_back(layer);
    width = layer.out;
  }
  return block;
}

DiffPoolModel::DiffPoolModel(const ModelConfig& config, int64_t in_features, int num_classes, int64_t max_nodes)
    : config_(config), in_features_(in_features), num_classes_(num_classes) {
  config_.validate();
  DP_CHECK(in_features >= 1 && num_classes >= 2 && max_nodes >= 1,
           "model for {} features, {} classes, largest graph {} nodes", in_features, num_classes, max_nodes);
  clusters_ = config_.cluster_counts(max_nodes);
  const int num_levels = config_.has_pooling() ? config_.pool_levels + 1 : 1;
  int64_t width = in_features;
  int64_t readout_width = 0;
  for (int l = 0; l < num_levels; ++l) {
    Level level;
    int layers = config_.conv_layers_at(l);
    if (!config_.has_pooling()) {  // GraphSAGE baseline: all convolution layers in one block
      layers = 0;
      for (int i = 0; i <= std::max(0, config_.pool_levels); ++i) layers += config_.conv_layers_at(i);
    }
    level.embed = make_block(fmt::format("level{}.embed", l), width, config_.hidden_dim, config_.embedding_dim, layers, true);
    const bool pools = l < num_levels - 1;
    if (pools && config_.learned_assignments())
      level.assign = make_block(fmt::format("level{}.assign", l), width, config_.hidden_dim,
                                clusters_[static_cast<std::size_t>(l)], layers, false);
    width = level.embed.out_width;
    readout_width += width;
    levels_.push_back(std::move(level));
  }
  int64_t in = readout_width;
  for (std::size_t i = 0; i <= config_.mlp_hidden.size(); ++i) {
    const int64_t out = i < config_.mlp_hidden.size() ? config_.mlp_hidden[i] : num_classes;
    mlp_weights_.push_back(params_.add(fmt::format("mlp.layer{}.weight", i), Shape{in, out}, Init::torch_linear, in, out));
    mlp_biases_.push_back(params_.add(fmt::format("mlp.layer{}.bias", i), Shape{out}, Init::torch_linear, in, out));
    in = out;
  }
}

// ---- the forward pass ----------------------------------------------------------------------------
//
// Shapes, per batch of B graphs (see ops.hpp for the letters):
//   N_l  rows of level l: N_0 = all nodes of the batch (packed), N_l = B * k_l for l >= 1
//   F_l  input width of level l, D_l its embedding width, k_{l+1} the clusters it pools into
//   C    classes
// Level 0 is sparse (block-diagonal CSR); every later level is dense, [B * k_l, k_l].

namespace {

// Per-forward cache of parameter variables (a parameter is put on the tape once per pass).
class ParamVars {
 public:
  ParamVars(Tape& tape, const ParameterStore& store) : tape_(tape), store_(store), vars_(store.entries().size(), nullptr) {}
  Variable* operator()(ParamId id) {
    Variable*& v = vars_[static_cast<std::size_t>(id.index)];
    if (!v) v = tape_.parameter(store_.value(id), store_.grad(id));
    return v;
  }

 private:
  Tape& tape_;
  const ParameterStore& store_;
  std::vector<Variable*> vars_;
};

SegmentReduce to_segment_reduce(Readout r) {
  switch (r) {
    case Readout::max: return SegmentReduce::max;
    case Readout::mean: return SegmentReduce::mean;
    case Readout::sum: return SegmentReduce::sum;
  }
  return SegmentReduce::max;
}

}  // namespace

struct DiffPoolModel::Pass {
  Pass(Tape& tape, const GraphBatch& batch, const ParameterStore& params, bool training, uint64_t dropout_seed)
      : tape(tape), batch(batch), param(tape, params), training(training), dropout_seed(dropout_seed) {}

  Tape& tape;
  const GraphBatch& batch;
  ParamVars param;  // param(id): the parameter's variable on this pass's tape
  bool training;
  uint64_t dropout_seed;
  uint64_t dropout_counter = 0;  // one dropout stream per dropout op, in the order they run
  // x -> [x | mean_neighbours(x)]: the embedding and assignment GNNs of a level read the same
  // input in their first layer, so it is built once and shared.
  std::vector<std::pair<Variable*, Variable*>> layer_inputs;
};

// The graph a level's GNNs run on.
struct DiffPoolModel::LevelGraph {
  // Level 0: sparse, block-diagonal.
  const GraphBatch* batch = nullptr;
  // Levels >= 1: dense blocks [B*k, k].
  Variable* adjacency = nullptr;        // A_l
  Variable* inv_degree = nullptr;       // mean aggregation: 1 / (row sums of A_l + eps), [B*k, 1]; null: sum
  const Segments* segments = nullptr;   // rows of each graph
  int64_t graphs = 0;
  bool sparse() const { return adjacency == nullptr; }
};

// What pooling level l gives level l + 1.
struct DiffPoolModel::PooledLevel {
  Variable* adjacency_times_s = nullptr;  // A_l S_l [N_l, k_{l+1}], shared with the link loss
  Variable* features = nullptr;           // X_{l+1} = S_l^T Z_l [B * k_{l+1}, D_l]
  Variable* adjacency = nullptr;          // A_{l+1} = S_l^T A_l S_l [B * k_{l+1}, k_{l+1}]
  const Segments* segments = nullptr;     // the rows of each graph at level l + 1
  int64_t graphs = 0;
};

Variable* DiffPoolModel::maybe_dropout(Pass& pass, Variable* x) const {
  if (!pass.training || config_.dropout <= 0) return x;
  return ops::dropout(pass.tape, x, config_.dropout, Rng::derive(pass.dropout_seed, pass.dropout_counter++));
}

// One GraphSAGE-mean layer (Hamilton et al. 2017; DiffPool paper section 4.1):
//   y (N_l, H) = [x | mean_neighbours(x)] (N_l, 2F) [W_root; W_nbr] (2F, H) + b (H),
// then l2-normalise, ReLU and batch norm as configured. Dropout first, in training.
Variable* DiffPoolModel::sage_layer(Pass& pass, const SageLayer& layer, const LevelGraph& g, Variable* x) const {
  Tape& tape = pass.tape;
  Workspace& ws = tape.workspace();
  const DType dtype = params_.dtype();
  x = maybe_dropout(pass, x);
  Variable* with_neighbours = nullptr;
  for (const auto& [input, result] : pass.layer_inputs) {
    if (input == x) {
      with_neighbours = result;
      break;
    }
  }
  if (!with_neighbours) {
    Variable* agg = g.sparse() ? ops::spmm(tape, g.batch->mean_adjacency, g.batch->mean_adjacency_t, x)
                               : ops::bmm(tape, g.adjacency, x, g.graphs);
    // Mean over weighted neighbours, D^-1 (A X): scaling the rows of the product, rather than
    // forming D^-1 A, keeps no second [B*k, k] matrix (and its gradient) in memory.
    if (!g.sparse() && g.inv_degree) agg = ops::scale_rows(tape, agg, g.inv_degree);
    with_neighbours = ops::concat_cols(tape, {x, agg});
    pass.layer_inputs.emplace_back(x, with_neighbours);
  }
  Variable* y = ops::linear(tape, with_neighbours, pass.param(layer.weight), pass.param(layer.bias));
  if (layer.normalize) y = ops::l2_normalize_rows(tape, y);
  if (layer.activation) y = ops::relu(tape, y);
  if (layer.batch_norm && config_.batch_norm_mode == BatchNormMode::trained) {
    y = ops::batch_norm(tape, y, pass.param(layer.bn_gamma), pass.param(layer.bn_beta), params_.buffer(layer.bn_mean),
                        params_.buffer(layer.bn_var), pass.training, config_.batch_norm_momentum,
                        config_.batch_norm_eps);
  } else if (layer.batch_norm) {
    // Scale 1 and shift 0 as constants, and running statistics that are thrown away: the
    // batch's own statistics normalise it, in evaluation too.
    const int64_t f = y->value.cols();
    Tensor gamma = ws.empty(Shape{f}, dtype), running_var = ws.empty(Shape{f}, dtype);
    tape.backend().fill(gamma, 1.0);
    tape.backend().fill(running_var, 1.0);
    y = ops::batch_norm(tape, y, tape.constant(gamma), tape.constant(ws.zeros(Shape{f}, dtype)),
                        ws.zeros(Shape{f}, dtype), running_var, true, config_.batch_norm_momentum,
                        config_.batch_norm_eps);
  }
  return y;
}

// A GNN of GraphSAGE layers (paper eq. 5 and 6, GNN_embed and GNN_pool): x (N_l, F_l) ->
// (N_l, D_l) for an embedding block, (N_l, k_{l+1}) logits for an assignment block. With
// concat_layers, an embedding block returns every layer's output side by side (authors' code).
Variable* DiffPoolModel::convolution_block(Pass& pass, const Block& block, const LevelGraph& graph, Variable* x,
                                           bool embedding) const {
  std::vector<Variable*> outputs;
  for (const SageLayer& layer : block.layers) {
    x = sage_layer(pass, layer, graph, x);
    outputs.push_back(x);
  }
  return config_.concat_layers && embedding ? ops::concat_all(pass.tape, outputs) : x;
}

// S_l (N_l, k_{l+1}) = softmax(GNN_pool(A_l, X_l)) row-wise (paper eq. 6), or the fixed
// Graclus assignment of DiffPool-DET.
Variable* DiffPoolModel::assignment(Pass& pass, const Level& level, const LevelGraph& graph, Variable* x,
                                    int level_index, int64_t clusters) const {
  Variable* s = config_.learned_assignments()
                    ? ops::softmax_rows(pass.tape, convolution_block(pass, level.assign, graph, x, false),
                                        /*in_place=*/true)
                    : pass.tape.constant(pass.batch.fixed_assignments.at(static_cast<std::size_t>(level_index)));
  DP_CHECK(s->value.cols() == clusters, "level {} assignment {} for {} clusters", level_index, s->value.describe(),
           clusters);
  return s;
}

// Pooling (paper section 3.2, eq. 3 and 4), per graph g of the level's row segments:
//   X_{l+1,g} = S_g^T Z_g   (k, D_l)        A_{l+1,g} = S_g^T (A_g S_g)   (k, k)
// s (N_l, k), z (N_l, D_l); every graph gets `clusters` rows at level l + 1, whose segments are
// kept alive in `keep` for the backward pass.
DiffPoolModel::PooledLevel DiffPoolModel::pool_level(Pass& pass, const LevelGraph& graph, Variable* s, Variable* z,
                                                     int64_t clusters, std::deque<Segments>& keep) const {
  Tape& tape = pass.tape;
  PooledLevel pooled;
  pooled.adjacency_times_s = graph.sparse() ? ops::spmm(tape, graph.batch->adjacency, graph.batch->adjacency, s)
                                            : ops::bmm(tape, graph.adjacency, s, graph.graphs);
  pooled.features = ops::segment_matmul_tn(tape, s, z, *graph.segments);
  pooled.adjacency = ops::segment_matmul_tn(tape, s, pooled.adjacency_times_s, *graph.segments);
  pooled.segments = &keep.emplace_back(make_uniform_segments(tape.workspace(), graph.graphs, clusters));
  pooled.graphs = graph.graphs;
  return pooled;
}

// The link-prediction loss of a level (paper section 3.3), one element, or null where the form
// has none at this level; s is S_l (N_l, k), as is A_l S_l (N_l, k).
Variable* DiffPoolModel::link_loss(Pass& pass, const LevelGraph& graph, Variable* s, Variable* as) const {
  if (config_.link_norm == LinkLossNorm::bce) return link_bce_loss(pass, graph, s);
  return link_frobenius_loss(pass, graph, s, as);
}

// The authors' code: binary cross-entropy between A and min(S S^T, 1) over every node pair of
// each graph, summed over the batch and divided by the number of pairs. Only the input graph's
// level has a 0/1 adjacency, so only the first pooling level gets it.
Variable* DiffPoolModel::link_bce_loss(Pass& pass, const LevelGraph& graph, Variable* s) const {
  if (!graph.sparse()) return nullptr;
  Tape& tape = pass.tape;
  const int64_t graphs = graph.graphs;
  double pairs = 0;
  for (int64_t g = 0; g < graphs; ++g) pairs += static_cast<double>(graph.segments->size(g)) * graph.segments->size(g);
  Variable* per_graph = ops::segment_reduce(tape, ops::link_bce(tape, s, graph.batch->adjacency, *graph.segments),
                                            *graph.segments, SegmentReduce::sum);
  return ops::add(tape, ops::mean_all(tape, per_graph), nullptr, pairs > 0 ? static_cast<double>(graphs) / pairs : 0.0);
}

// ||A_g - S_g S_g^T||_F per graph g, through ||A||^2 - 2 tr(S^T A S) + ||S^T S||^2 (no n x n
// matrix), then: squared (frobenius_squared), as is (frobenius, the paper), or divided by n_g^2
// (per_entry, PyTorch Geometric); mean over the graphs.
Variable* DiffPoolModel::link_frobenius_loss(Pass& pass, const LevelGraph& graph, Variable* s, Variable* as) const {
  Tape& tape = pass.tape;
  const int64_t graphs = graph.graphs;
  Variable* a_sq = graph.sparse()
                       ? tape.constant(graph.batch->adjacency_sq_norms)
                       : ops::segment_reduce(tape, ops::row_dot(tape, graph.adjacency, graph.adjacency),
                                             *graph.segments, SegmentReduce::sum);
  Variable* trace = ops::segment_reduce(tape, ops::row_dot(tape, s, as), *graph.segments, SegmentReduce::sum);
  Variable* gram_sq = ops::segment_gram_sq(tape, s, *graph.segments);
  Variable* sq = ops::add(tape, ops::add(tape, a_sq, trace, 1.0, -2.0), gram_sq);  // (B, 1)
  Variable* per_graph = sq;
  if (config_.link_norm != LinkLossNorm::frobenius_squared) per_graph = ops::sqrt(tape, sq, 1e-12);
  if (config_.link_norm == LinkLossNorm::per_entry) {
    std::vector<double> inv(static_cast<std::size_t>(graphs));
    for (int64_t g = 0; g < graphs; ++g) {
      const double n = static_cast<double>(graph.segments->size(g));
      inv[static_cast<std::size_t>(g)] = n > 0 ? 1.0 / (n * n) : 0.0;
    }
    Tensor t = tape.workspace().empty(Shape{graphs, 1}, params_.dtype());
    upload_converted(tape.backend(), inv, t);
    per_graph = ops::mul(tape, per_graph, tape.constant(t));
  }
  return ops::mean_all(tape, per_graph);
}

// The entropy loss (paper section 3.3): mean over graphs of (1/n_g) sum_i H(S_i),
// H(p) = -sum_j p_j log p_j; s is S_l (N_l, k). One element.
Variable* DiffPoolModel::entropy_loss(Pass& pass, const LevelGraph& graph, Variable* s) const {
  Tape& tape = pass.tape;
  Variable* node_entropy = ops::row_xlogx(tape, s);  // -H per node, (N_l, 1)
  return ops::add(tape, ops::mean_all(tape, ops::segment_reduce(tape, node_entropy, *graph.segments, SegmentReduce::mean)),
                  nullptr, -1.0);
}

// The next level's dense graph: A_{l+1}, and for mean aggregation the inverse weighted degrees
// 1 / (rowsum(A_{l+1}) + dense_degree_eps), (B * k, 1).
DiffPoolModel::LevelGraph DiffPoolModel::pooled_graph(Pass& pass, const PooledLevel& pooled) const {
  LevelGraph next;
  next.adjacency = pooled.adjacency;
  next.segments = pooled.segments;
  next.graphs = pooled.graphs;
  if (config_.dense_aggregation == DenseAggregation::mean)
    next.inv_degree = ops::reciprocal(pass.tape, ops::row_sum(pass.tape, pooled.adjacency), config_.dense_degree_eps);
  return next;
}

// Readout (paper section 3.2 and 4.1): the per-level readouts (B, D_l) side by side,
// (B, sum_l D_l), into the MLP; returns the logits (B, C).
Variable* DiffPoolModel::readout(Pass& pass, const std::vector<Variable*>& level_readouts, ForwardOutput& out) const {
  Tape& tape = pass.tape;
  Variable* h = ops::concat_all(tape, level_readouts);
  out.graph_embedding = h;
  for (std::size_t i = 0; i < mlp_weights_.size(); ++i) {
    const bool last = i + 1 == mlp_weights_.size();
    h = ops::linear(tape, h, pass.param(mlp_weights_[i]), pass.param(mlp_biases_[i]));
    if (!last) h = maybe_dropout(pass, ops::relu(tape, h));
  }
  return h;
}

// The objective: mean cross-entropy plus each auxiliary loss summed over levels and weighted.
void DiffPoolModel::add_losses(Pass& pass, const GraphBatch& batch, ForwardOutput& out) const {
  Tape& tape = pass.tape;
  out.classification_loss = ops::mean_all(tape, ops::cross_entropy(tape, out.logits, batch.labels));
  Variable* total = out.classification_loss;
  for (const LevelOutput& lo : out.levels) {
    if (!lo.link_loss) continue;
    out.link_loss = out.link_loss ? ops::add(tape, out.link_loss, lo.link_loss) : lo.link_loss;
    out.entropy_loss = out.entropy_loss ? ops::add(tape, out.entropy_loss, lo.entropy_loss) : lo.entropy_loss;
  }
  if (out.link_loss && config_.variant == Variant::diffpool && config_.link_weight > 0)
    total = ops::add(tape, total, out.link_loss, 1.0, config_.link_weight);
  if (out.entropy_loss && config_.learned_assignments() && config_.entropy_weight > 0)
    total = ops::add(tape, total, out.entropy_loss, 1.0, config_.entropy_weight);
  out.loss = total;
}

ForwardOutput DiffPoolModel::forward(Tape& tape, const GraphBatch& batch, bool training, uint64_t dropout_seed) const {
  DP_CHECK(params_.allocated(), "model parameters are not allocated");
  DP_CHECK(batch.features.cols() == in_features_, "batch features {} for a model of {} input features",
           batch.features.describe(), in_features_);
  Pass pass(tape, batch, params_, training, dropout_seed);
  ForwardOutput out;
  LevelGraph graph;
  graph.batch = &batch;
  graph.segments = &batch.nodes;
  graph.graphs = batch.num_graphs();
  Variable* x = tape.constant(batch.features);
  std::vector<Variable*> readouts;
  const int num_levels = static_cast<int>(levels_.size());
  for (int l = 0; l < num_levels; ++l) {
    const Level& level = levels_[static_cast<std::size_t>(l)];
    LevelOutput lo;
    lo.features = x;
    lo.embedding = convolution_block(pass, level.embed, graph, x, true);
    readouts.push_back(ops::segment_reduce(tape, lo.embedding, *graph.segments, to_segment_reduce(config_.readout)));
    if (l < num_levels - 1) {
      const int64_t k = clusters_[static_cast<std::size_t>(l)];
      lo.assignment = assignment(pass, level, graph, x, l, k);
      const PooledLevel pooled = pool_level(pass, graph, lo.assignment, lo.embedding, k, out.segments);
      lo.pooled_adjacency = pooled.adjacency;
      lo.link_loss = link_loss(pass, graph, lo.assignment, pooled.adjacency_times_s);
      lo.entropy_loss = entropy_loss(pass, graph, lo.assignment);
      graph = pooled_graph(pass, pooled);
      x = pooled.features;
    }
    out.levels.push_back(lo);
  }
  out.logits = readout(pass, readouts, out);
  add_losses(pass, batch, out);
  return out;
}

std::string DiffPoolModel::summary() const {
  std::string s = fmt::format("{}: {} input features, {} classes", variant_name(config_.variant), in_features_, num_classes_);
  if (!clusters_.empty()) {
    s += ", clusters";
    for (int64_t k : clusters_) s += fmt::format(" {}", k);
  }
  for (std::size_t l = 0; l < levels_.size(); ++l) {
    s += fmt::format("; level {}: {} GraphSAGE layers ->{}", l, levels_[l].embed.layers.size(), levels_[l].embed.out_width);
    if (!levels_[l].assign.layers.empty()) s += fmt::format(", assignment GNN ->{}", levels_[l].assign.layers.back().out);
  }
  int64_t count = 0;
  for (const auto& e : params_.entries()) count += e.shape.numel();
  s += fmt::format("; {} parameters", count);
  return s;
}

}  // namespace diffpool
