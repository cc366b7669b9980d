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

// The graph a level's GNNs run on.
struct LevelGraph {
  // Level 0: sparse, block-diagonal.
  const GraphBatch* batch = nullptr;
  // Levels >= 1: dense blocks [B*k, k].
  Variable* adjacency = nullptr;        // A_l
  Variable* inv_degree = nullptr;       // mean aggregation: 1 / (row sums of A_l + eps), [B*k, 1]; null: sum
  const Segments* segments = nullptr;   // rows of each graph
  int64_t graphs = 0;
  bool sparse() const { return adjacency == nullptr; }
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

ForwardOutput DiffPoolModel::forward(Tape& tape, const GraphBatch& batch, bool training, uint64_t dropout_seed) const {
  DP_CHECK(params_.allocated(), "model parameters are not allocated");
  DP_CHECK(batch.features.cols() == in_features_, "batch features {} for a model of {} input features",
           batch.features.describe(), in_features_);
  ParamVars param(tape, params_);
  Workspace& ws = tape.workspace();
  const DType dtype = params_.dtype();
  const int64_t graphs = batch.num_graphs();
  uint64_t dropout_counter = 0;
  ForwardOutput out;

  // [x | mean of x over each node's neighbours], the input of a GraphSAGE-mean layer. The
  // embedding and assignment GNNs of a level read the same input in their first layer, so it is
  // built once and shared.
  std::vector<std::pair<Variable*, Variable*>> layer_inputs;
  auto with_neighbours = [&](const LevelGraph& g, Variable* x) -> Variable* {
    for (const auto& [input, result] : layer_inputs)
      if (input == x) return result;
    Variable* agg = g.sparse() ? ops::spmm(tape, g.batch->mean_adjacency, g.batch->mean_adjacency_t, x)
                               : ops::bmm(tape, g.adjacency, x, g.graphs);
    // Mean over weighted neighbours, D^-1 (A X): scaling the rows of the product, rather than
    // forming D^-1 A, keeps no second [B*k, k] matrix (and its gradient) in memory.
    if (!g.sparse() && g.inv_degree) agg = ops::scale_rows(tape, agg, g.inv_degree);
    Variable* result = ops::concat_cols(tape, {x, agg});
    layer_inputs.emplace_back(x, result);
    return result;
  };

  // One GraphSAGE-mean layer: y = [x | mean_neighbours(x)] [W_root; W_nbr] + b, then
  // l2-normalise, ReLU and batch norm as configured.
  auto sage = [&](const SageLayer& layer, const LevelGraph& g, Variable* x) -> Variable* {
    if (training && config_.dropout > 0)
      x = ops::dropout(tape, x, config_.dropout, Rng::derive(dropout_seed, dropout_counter++));
    Variable* y = ops::linear(tape, with_neighbours(g, x), param(layer.weight), param(layer.bias));
    if (layer.normalize) y = ops::l2_normalize_rows(tape, y);
    if (layer.activation) y = ops::relu(tape, y);
    if (layer.batch_norm && config_.batch_norm_mode == BatchNormMode::trained) {
      y = ops::batch_norm(tape, y, param(layer.bn_gamma), param(layer.bn_beta), params_.buffer(layer.bn_mean),
                          params_.buffer(layer.bn_var), training, config_.batch_norm_momentum, config_.batch_norm_eps);
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
  };

  auto run_block = [&](const Block& block, const LevelGraph& g, Variable* x, bool embedding) -> Variable* {
    std::vector<Variable*> outputs;
    for (const SageLayer& layer : block.layers) {
      x = sage(layer, g, x);
      outputs.push_back(x);
    }
    // With concat_layers, the concatenation of every layer's output (the authors' code).
    return config_.concat_layers && embedding ? ops::concat_all(tape, outputs) : x;
  };

  LevelGraph graph;
  graph.batch = &batch;
  graph.segments = &batch.nodes;
  graph.graphs = graphs;
  Variable* x = tape.constant(batch.features);
  std::vector<Variable*> readouts;
  const int num_levels = static_cast<int>(levels_.size());
  const SegmentReduce readout = to_segment_reduce(config_.readout);

  for (int l = 0; l < num_levels; ++l) {
    const Level& level = levels_[static_cast<std::size_t>(l)];
    LevelOutput lo;
    lo.features = x;
    Variable* z = run_block(level.embed, graph, x, true);
    lo.embedding = z;
    readouts.push_back(ops::segment_reduce(tape, z, *graph.segments, readout));

    if (l < num_levels - 1) {
      const int64_t k = clusters_[static_cast<std::size_t>(l)];
      Variable* s = config_.learned_assignments()
                        ? ops::softmax_rows(tape, run_block(level.assign, graph, x, false), /*in_place=*/true)
                        : tape.constant(batch.fixed_assignments.at(static_cast<std::size_t>(l)));
      DP_CHECK(s->value.cols() == k, "level {} assignment {} for {} clusters", l, s->value.describe(), k);
      lo.assignment = s;
      // X' = S^T Z and A' = S^T (A S), per graph (paper eq. 3 and 4).
      Variable* as = graph.sparse() ? ops::spmm(tape, batch.adjacency, batch.adjacency, s)
                                    : ops::bmm(tape, graph.adjacency, s, graphs);
      Variable* next_x = ops::segment_matmul_tn(tape, s, z, *graph.segments);
      Variable* next_a = ops::segment_matmul_tn(tape, s, as, *graph.segments);
      lo.pooled_adjacency = next_a;
      const Segments& pooled = out.segments.emplace_back(make_uniform_segments(ws, graphs, k));

      if (config_.link_norm == LinkLossNorm::bce) {
        // The authors' code: binary cross-entropy between A and min(S S^T, 1) over every node
        // pair of each graph, summed over the batch and divided by the number of pairs. Only the
        // input graph's level has a 0/1 adjacency, so only the first pooling level gets it.
        if (graph.sparse()) {
          double pairs = 0;
          for (int64_t g = 0; g < graphs; ++g) pairs += static_cast<double>(graph.segments->size(g)) * graph.segments->size(g);
          Variable* per_graph = ops::segment_reduce(tape, ops::link_bce(tape, s, batch.adjacency, *graph.segments),
                                                    *graph.segments, SegmentReduce::sum);
          lo.link_loss = ops::add(tape, ops::mean_all(tape, per_graph), nullptr,
                                  pairs > 0 ? static_cast<double>(graphs) / pairs : 0.0);
        }
      } else {
        // Link prediction: ||A - S S^T||_F^2 = ||A||^2 - 2 tr(S^T A S) + ||S^T S||^2 per graph.
        Variable* a_sq = graph.sparse()
                             ? tape.constant(batch.adjacency_sq_norms)
                             : ops::segment_reduce(tape, ops::row_dot(tape, graph.adjacency, graph.adjacency),
                                                   *graph.segments, SegmentReduce::sum);
        Variable* trace = ops::segment_reduce(tape, ops::row_dot(tape, s, as), *graph.segments, SegmentReduce::sum);
        Variable* gram_sq = ops::segment_gram_sq(tape, s, *graph.segments);
        Variable* sq = ops::add(tape, ops::add(tape, a_sq, trace, 1.0, -2.0), gram_sq);
        Variable* per_graph = sq;
        if (config_.link_norm != LinkLossNorm::frobenius_squared) per_graph = ops::sqrt(tape, sq, 1e-12);
        if (config_.link_norm == LinkLossNorm::per_entry) {
          std::vector<double> inv(static_cast<std::size_t>(graphs));
          for (int64_t g = 0; g < graphs; ++g) {
            const double n = static_cast<double>(graph.segments->size(g));
            inv[static_cast<std::size_t>(g)] = n > 0 ? 1.0 / (n * n) : 0.0;
          }
          Tensor t = ws.empty(Shape{graphs, 1}, dtype);
          if (dtype == DType::f64) {
            tape.backend().copy_bytes(t.data(), t.device(), inv.data(), Device::cpu, t.bytes());
          } else {
            std::vector<float> f(inv.begin(), inv.end());
            tape.backend().copy_bytes(t.data(), t.device(), f.data(), Device::cpu, t.bytes());
          }
          per_graph = ops::mul(tape, per_graph, tape.constant(t));
        }
        lo.link_loss = ops::mean_all(tape, per_graph);
      }
      // Entropy: mean over graphs of (1/n_g) sum_i H(S_i), H(p) = -sum_j p_j log p_j.
      Variable* node_entropy = ops::row_xlogx(tape, s);  // -H per node
      lo.entropy_loss = ops::add(tape, ops::mean_all(tape, ops::segment_reduce(tape, node_entropy, *graph.segments,
                                                                               SegmentReduce::mean)),
                                 nullptr, -1.0);

      // The next level's dense graph.
      LevelGraph next;
      next.adjacency = next_a;
      next.segments = &pooled;
      next.graphs = graphs;
      if (config_.dense_aggregation == DenseAggregation::mean)
        next.inv_degree = ops::reciprocal(tape, ops::row_sum(tape, next_a), config_.dense_degree_eps);
      graph = next;
      x = next_x;
    }
    out.levels.push_back(lo);
  }

  // Readout: concatenated per-level readouts, then the MLP.
  Variable* h = ops::concat_all(tape, readouts);
  out.graph_embedding = h;
  for (std::size_t i = 0; i < mlp_weights_.size(); ++i) {
    const bool last = i + 1 == mlp_weights_.size();
    h = ops::linear(tape, h, param(mlp_weights_[i]), param(mlp_biases_[i]));
    if (!last) {
      h = ops::relu(tape, h);
      if (training && config_.dropout > 0)
        h = ops::dropout(tape, h, config_.dropout, Rng::derive(dropout_seed, dropout_counter++));
    }
  }
  out.logits = h;

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
